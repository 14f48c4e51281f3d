"""Child processes of the real components (agent, collector, broker, device daemons), for the
demo, tests and scenarios, which own them: no child outlives the process that started it.

A parent that stops normally stops its children itself, in order (agents, then the collector,
then the broker), each with SIGTERM and SIGKILL when it does not stop in time. A parent that
cannot (``kill -9``, an exception, a second Ctrl-C during the stop) still takes them along:
every child is started by ``spawn``, which asks Linux to kill it when its parent dies
(``PR_SET_PDEATHSIG``). The collector's own child, its MQTT gateway, exits when the
collector's end of their socket closes (``collector/ingest/gateway.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

# What a child gets when its parent dies. Not SIGTERM: nobody is left to follow up on a stop
# that hangs (an agent whose device read swallows its cancellation never stops), and each
# component survives ``kill -9`` by design (the outbox, the ack after commit, the gateway).
DEATH_SIGNAL = signal.SIGKILL
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up here, in the parent: between fork and exec the child only calls it.
_PRCTL = _load_prctl()


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel for ``DEATH_SIGNAL`` when the parent dies (Linux)."""
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    death = int(DEATH_SIGNAL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, death, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request: nobody would tell us
            os._exit(1)

    return preexec


class _Spawner:
    """The one thread that forks every child.

    Linux sends the death signal when the *thread* that forked a child ends, not its process:
    a child started from a short-lived thread (a test's helper, ``asyncio.to_thread``) would be
    stopped with it. This thread lives as long as the process does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def submit(self, fn: Callable[[], subprocess.Popen[bytes]]) -> Future[subprocess.Popen[bytes]]:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():  # new, or a forked copy of us
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
                self._pid = os.getpid()
            return self._pool.submit(fn)


_SPAWNER = _Spawner()


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)`` for a child that dies with this process, however it
    ends: ``DEATH_SIGNAL`` reaches the child when this process is gone (on Linux; elsewhere a
    plain Popen)."""
    preexec = _die_with_parent()
    if preexec is None:
        return subprocess.Popen(list(argv), **popen)
    started = _SPAWNER.submit(lambda: subprocess.Popen(list(argv), preexec_fn=preexec, **popen))
    try:
        return started.result()
    except BaseException:
        # Interrupted while the child starts (Ctrl-C): nobody would hold it, so it goes.
        started.add_done_callback(_kill_started)
        raise


def _kill_started(started: Future[subprocess.Popen[bytes]]) -> None:
    if started.exception() is None:
        proc = started.result()
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP (a closed terminal) raise ``KeyboardInterrupt`` as Ctrl-C
    does, so that the owner of child processes stops them in order whichever way it is asked.

    SIGINT keeps its disposition: a script that started us with SIGINT ignored still stops us
    with SIGTERM.
    """
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cli_argv(*args: str) -> list[str]:
    """argv running the ``shelterwatch`` command with this interpreter."""
    return [sys.executable, "-m", "cli", *args]


class ChildProcess:
    """A named child process whose output goes to a log file; stoppable, killable, restartable;
    it dies with this process (``spawn``)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (again); output is appended to the log file."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._proc = spawn(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            # Ctrl-C in a terminal reaches the owner alone, which stops its children in order.
            start_new_session=True,
        )
        log.close()

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code once it has exited."""
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        """Process id of the current run."""
        return None if self._proc is None else self._proc.pid

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def kill(self) -> None:
        """``kill -9`` now."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(timeout=10)

    def tail(self, n_bytes: int = 2000) -> str:
        """The end of the log, for error messages."""
        try:
            return self.log_path.read_bytes()[-n_bytes:].decode(errors="replace")
        except OSError:
            return ""
