"""Child processes die with the process that started them, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import still_alive, wait_for

# A parent that starts a sleeping child from a thread that ends at once, prints the child's
# pid, then waits to be killed.
_OWNER = """
import sys, threading, time
from pathlib import Path
from simulators.processes import ChildProcess

child = ChildProcess("sleeper", ["sleep", "300"], log_path=Path(sys.argv[1]))
starter = threading.Thread(target=child.start)
starter.start()
starter.join()
print(child.pid, flush=True)
time.sleep(300)
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[int, str]]]:
    """A parent process and its one child (pid -> command line)."""
    with subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(tmp_path / "sleeper.log")],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        child = {int(proc.stdout.readline()): "sleep 300"}
        try:
            yield proc, child
        finally:
            proc.kill()


def test_a_child_outlives_the_thread_that_started_it(
    owner: tuple[subprocess.Popen[str], dict[int, str]],
) -> None:
    _, child = owner
    time.sleep(1.0)
    assert still_alive(child) == child


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_child_dies_with_its_parent_however_the_parent_ends(
    owner: tuple[subprocess.Popen[str], dict[int, str]], sig: signal.Signals
) -> None:
    proc, child = owner
    os.kill(proc.pid, sig)
    proc.wait(timeout=10)
    wait_for("the child to die with its parent", lambda: not still_alive(child), timeout_s=5)
