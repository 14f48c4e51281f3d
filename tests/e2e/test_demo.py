"""``shelterwatch demo`` opens a ticket from a simulated door within a minute and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.broker import free_port

pytestmark = pytest.mark.slow


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
