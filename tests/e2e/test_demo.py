"""``shelterwatch demo`` opens a ticket from a simulated door within a minute and stops cleanly;
none of its processes outlives it, however it ends."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from simulators.broker import free_port
from tests.conftest import process_tree, survivors, wait_for

pytestmark = pytest.mark.slow


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_shows_a_ticket_within_a_minute_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "demo",
            "--http-port",
            str(free_port()),
            "--workdir",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as a terminal sends it: a suite started as a shell's background job inherits
        # SIGINT ignored, and the demo would rightly keep ignoring it (see the SIGTERM test).
        preexec_fn=_sigint_default,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        lines.append(line)
        if "ticket TKT-" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "dashboard   http://127.0.0.1:" in output
    assert "ticket TKT-" in output and "door_open at NRO-LYO-01" in output
    assert output.rstrip().endswith("demo stopped")
    # Every child (broker, collector, agents) is gone: nothing holds the working directory.
    leftovers = subprocess.run(
        ["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert [pid for pid in leftovers if int(pid) != os.getpid()] == []


# -- the demo owns its children ---------------------------------------------------------------

# What the demo runs: mosquitto, the collector and its MQTT gateway, three agents.
CHILDREN = ["agent", "agent", "agent", "broker", "collector", "gateway"]


def _kind(command: str) -> str:
    for marker, kind in (
        ("mosquitto", "broker"),
        ("collector.ingest.gateway", "gateway"),
        ("cli collector run", "collector"),
        ("cli agent run", "agent"),
    ):
        if marker in command:
            return kind
    return command


def _demo_argv(workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli",
        "demo",
        *("--http-port", str(free_port()), "--broker-port", str(free_port())),
        *("--workdir", str(workdir)),
    ]


def _running_children(demo_pid: int, output: Callable[[], str]) -> dict[int, str]:
    """Once the demo says it runs, every process it started (pid -> command line)."""
    wait_for("the demo's banner", lambda: "shelterwatch demo is running" in output(), timeout_s=90)

    def complete() -> dict[int, str]:
        tree = process_tree(demo_pid)
        return tree if sorted(_kind(command) for command in tree.values()) == CHILDREN else {}

    children: dict[int, str] = wait_for("every child of the demo", complete, timeout_s=15)
    return children


class _Output:
    """A child's output, read by a thread as it comes (the child never blocks on it)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:  # a terminal whose other end is gone
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def __call__(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")


@pytest.mark.parametrize("during", ["its run", "its shutdown"])
def test_a_demo_killed_with_sigkill_leaves_no_process_behind(tmp_path: Path, during: str) -> None:
    with subprocess.Popen(
        _demo_argv(tmp_path / "demo"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as demo:
        assert demo.stdout is not None
        output = _Output(demo.stdout.fileno())
        children = _running_children(demo.pid, output)
        if during == "its shutdown":
            demo.send_signal(signal.SIGTERM)
            wait_for("the demo to start stopping", lambda: "stopping" in output())
        demo.kill()
        demo.wait()
    assert survivors(children, within_s=5) == {}


def test_a_demo_started_with_sigint_ignored_stops_on_sigterm(tmp_path: Path) -> None:
    # A script that ignores SIGINT (as a shell does for its background jobs) starts the demo.
    script = "trap '' INT; exec " + " ".join(_demo_argv(tmp_path / "demo"))
    with subprocess.Popen(
        ["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as demo:
        assert demo.stdout is not None
        output = _Output(demo.stdout.fileno())
        children = _running_children(demo.pid, output)
        demo.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert demo.poll() is None, "SIGINT was to be ignored"
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0, output()
    assert survivors(children, within_s=5) == {}
    assert output().rstrip().endswith("demo stopped")


def _controlling_terminal() -> None:
    # In the child's new session: its terminal becomes the session's, as a shell's would be.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_a_demo_whose_terminal_is_closed_leaves_no_process_behind(tmp_path: Path) -> None:
    terminal, its_end = os.openpty()
    demo = subprocess.Popen(
        _demo_argv(tmp_path / "demo"),
        stdin=its_end,
        stdout=its_end,
        stderr=its_end,
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(its_end)
    try:
        children = _running_children(demo.pid, _Output(terminal))
    finally:
        os.close(terminal)  # the terminal window is closed: SIGHUP
    demo.wait(timeout=60)
    assert survivors(children, within_s=5) == {}
