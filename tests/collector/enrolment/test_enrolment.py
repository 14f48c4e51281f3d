"""``shelterwatch collector enrol-agent``: credentials, entries and a site file, never twice."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from collector.enrolment import mosquitto

AGENT = ["--agent-id", "pm-enrol-1", "--site-id", "PM-ENR-1", "--site-kind", "pm"]
BROKER = ["--broker", "mqtt.noc.example:8883"]


def enrol(tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "collector",
            "enrol-agent",
            *AGENT,
            *BROKER,
            "--out",
            str(tmp_path / "out"),
            "--broker-passwd",
            str(tmp_path / "passwd"),
            "--broker-acl",
            str(tmp_path / "acl"),
            *extra,
        ]
    )


def test_enrolment_writes_a_password_a_valid_site_file_and_the_entries(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "collector",
            "enrol-agent",
            *AGENT,
            *BROKER,
            "--ca-file",
            "/etc/shelterwatch/ca.pem",
            "--collector-url",
            "https://noc.example:8443",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    password = (out / "mqtt-password").read_text().strip()
    assert len(password) >= 40
    assert stat.S_IMODE((out / "mqtt-password").stat().st_mode) == 0o600
    user, encoded = (out / "mosquitto-passwd.line").read_text().strip().split(":", 1)
    assert user == "pm-enrol-1" and mosquitto.verify_password(encoded, password)
    assert (out / "mosquitto-acl.conf").read_text() == mosquitto.agent_acl("pm-enrol-1")
    validate = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "validate", str(out / "site.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert validate.returncode == 0, validate.stderr
    site = (out / "site.yaml").read_text()
    assert (
        "username: pm-enrol-1" in site and "password_file: /etc/shelterwatch/mqtt-password" in site
    )
    assert "url: https://noc.example:8443" in site


def test_enrolling_twice_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert enrol(tmp_path) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "passwd", tmp_path / "acl")}
    capsys.readouterr()
    assert enrol(tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("shelterwatch: error: pm-enrol-1 is already enrolled")
    assert "--rotate" in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (tmp_path / "passwd", tmp_path / "acl")} == before


def test_rotate_replaces_the_password_line_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("someone:$7$101$c2FsdA==$aGFzaA==\n")
    assert enrol(tmp_path) == 0
    old = (tmp_path / "out" / "mqtt-password").read_text().strip()
    acl = (tmp_path / "acl").read_text()
    site = tmp_path / "out" / "site.yaml"
    site.write_text(site.read_text() + "# devices added on site\n")
    assert enrol(tmp_path, "--rotate") == 0
    new = (tmp_path / "out" / "mqtt-password").read_text().strip()
    lines = (tmp_path / "passwd").read_text().splitlines()
    assert lines[0] == "someone:$7$101$c2FsdA==$aGFzaA=="
    assert [line.split(":")[0] for line in lines] == ["someone", "pm-enrol-1"]
    encoded = lines[1].split(":", 1)[1]
    assert mosquitto.verify_password(encoded, new) and not mosquitto.verify_password(encoded, old)
    assert (tmp_path / "acl").read_text() == acl  # the block is there once
    assert site.read_text().endswith("# devices added on site\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rotate"], "pm-enrol-1 has no password in"),
        (["--agent-id", "Not An Id"], "invalid agent id"),
        (["--collector-url", "ftp://x"], "collector_api.url"),
    ],
)
def test_a_refused_enrolment_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert enrol(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_collector_user_gets_its_own_block_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert enrol(tmp_path) == 0
    assert "no block for the collector's user 'collector'" in capsys.readouterr().out
    files = ["--broker-passwd", str(tmp_path / "passwd"), "--broker-acl", str(tmp_path / "acl")]
    out = ["--out", str(tmp_path / "collector")]
    assert main(["collector", "enrol-collector", *out, *files]) == 0
    assert mosquitto.acl_users((tmp_path / "acl").read_text()) == {"collector", "pm-enrol-1"}
    assert "topic write sw/v1/agents/+/ack" in (tmp_path / "acl").read_text()
    assert main(["collector", "enrol-collector", *out, *files]) == 2
