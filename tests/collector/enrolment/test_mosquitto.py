"""Password and ACL entries in mosquitto's own formats."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from collector.enrolment import mosquitto


def test_a_hash_verifies_its_password_only() -> None:
    encoded = mosquitto.hash_password("s3cret", iterations=101, salt=b"\x00" * 12)
    assert encoded.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert mosquitto.verify_password(encoded, "s3cret")
    assert not mosquitto.verify_password(encoded, "s3cret!")
    assert mosquitto.hash_password("s3cret") != mosquitto.hash_password("s3cret")  # salted


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd absent")
def test_the_same_algorithm_as_mosquitto_passwd(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "u1", "pa55"], check=True)
    user, encoded = passwd.read_text().strip().split(":", 1)
    assert user == "u1"
    assert mosquitto.verify_password(encoded, "pa55")
    assert not mosquitto.verify_password(encoded, "pa56")


def test_a_password_line_is_replaced_in_place_and_others_kept() -> None:
    text = "alice:$7$1$a$b\nbob:$7$1$c$d\n"
    assert mosquitto.password_users(text) == {"alice", "bob"}
    replaced = mosquitto.with_password_line(text, "alice", "alice:NEW")
    assert replaced == "bob:$7$1$c$d\nalice:NEW\n"
    assert mosquitto.with_password_line("", "carol", "carol:X") == "carol:X\n"


def test_the_agent_block_names_only_its_own_topics() -> None:
    block = mosquitto.agent_acl("pm-a-1")
    assert block.splitlines()[1:] == [
        "user pm-a-1",
        "topic write sw/v1/agents/pm-a-1/events",
        "topic write sw/v1/agents/pm-a-1/telemetry",
        "topic write sw/v1/agents/pm-a-1/status",
        "topic write sw/v1/agents/pm-a-1/heartbeat",
        "topic read sw/v1/agents/pm-a-1/ack",
        "topic read sw/v1/agents/pm-a-1/config",
        "topic read sw/v1/agents/pm-a-1/cmd",
        "topic read sw/v1/collectors/+/status",
    ]
    assert mosquitto.acl_users(mosquitto.with_acl_block("", block)) == {"pm-a-1"}


@pytest.mark.parametrize("name", ["", "a:b", "a b"])
def test_a_user_name_the_files_cannot_hold_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid broker user name"):
        mosquitto.password_line(name, "x")
