"""``shelterwatch agent check`` against a running agent: live values, reachability, exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.stack import AgentProcess, Stack
from tests.e2e.test_walking_skeleton import DEMO_SITES, wait_for

pytestmark = pytest.mark.slow


def check(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "agent", "check", "--config", str(agent.site_file), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Stack, AgentProcess]]:
    stack = Stack(tmp_path / "stack")
    stack.broker.start()
    stack.noc_token = stack.create_token(name="noc", role="noc")
    stack.start_collector()
    agent = stack.add_agent(DEMO_SITES / "pm-lyon-0102.yaml")
    stack.wait_for_gpio(agent.agent_id)
    try:
        yield stack, agent
    finally:
        stack.stop()


def test_check_shows_live_values_and_fails_when_the_broker_goes(
    running: tuple[Stack, AgentProcess],
) -> None:
    stack, agent = running
    wait_for("a healthy check", lambda: check(agent).returncode == 0)
    stack.set_contact(agent.agent_id, "door", alarm=True)
    status = wait_for(
        "the door open in the check",
        lambda: (
            (s := json.loads(check(agent, "--json").stdout))
            and any(p["point"] == "door" and p["alarm_active"] for p in s["points"])
            and s
        ),
    )
    assert status["broker_connected"] and status["collector_up"]
    screen = check(agent).stdout
    assert "door" in screen and "ACTIVE" in screen and "OK: nothing wrong" in screen
    stack.broker.stop()
    failing = wait_for("the check to notice", lambda: (r := check(agent)).returncode == 1 and r)
    assert "broker not reachable" in failing.stdout


def test_check_without_a_running_agent_says_so(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        (DEMO_SITES / "pm-lyon-0102.yaml")
        .read_text()
        .replace("/var/lib/shelterwatch/pm-lyon-0102/outbox.db", str(tmp_path / "outbox.db"))
    )
    result = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "check", "--config", str(site)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "is it running?" in result.stderr and "Traceback" not in result.stderr


def test_a_deep_data_directory_still_gets_a_status_socket(tmp_path: Path) -> None:
    """A Unix socket path holds 107 bytes: beyond that the socket moves to the temporary
    directory under a name both the agent and ``agent check`` derive from the outbox path."""
    from agent.runtime.status import MAX_SOCKET_PATH, status_socket_path

    shallow = tmp_path / "outbox.db"
    assert status_socket_path(shallow) == tmp_path / "agent.sock"
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6) / "outbox.db"
    moved = status_socket_path(deep)
    assert len(str(moved)) <= MAX_SOCKET_PATH
    assert moved == status_socket_path(deep)  # the same for both sides
    assert moved != status_socket_path(tmp_path.joinpath(*["another-long-folder"] * 7) / "o.db")
