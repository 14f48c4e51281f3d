"""A wall clock a test can step, as a system clock is stepped, while monotonic time runs on.

A synced clock set an hour ahead by hand or by a bad time server moves ``now()`` and nothing
else: delays and timeouts (monotonic) carry on. Clock tests start the agent process with
``SHELTERWATCH_TEST_WALL_STEP`` pointing at a control file and write the total step into it;
the agent's wall clock is its usual clock plus that step. The collector is never given it.

Only a test configuration sets the variable; a production unit never does (the agent logs a
warning when it is set).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from clocks.clock import Clock

ENV_VAR = "SHELTERWATCH_TEST_WALL_STEP"
_RECHECK_S = 0.05  # how often a reader looks at the control file (a stat, no read)


class SteppedClock:
    """``inner``'s wall time plus the step written in ``control_file``; its monotonic time."""

    def __init__(self, inner: Clock, control_file: Path, *, recheck_s: float = _RECHECK_S) -> None:
        self.inner = inner
        self.control_file = control_file
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = -1e9
        self._step = 0.0

    def now(self) -> datetime:
        """The inner clock's time, stepped."""
        return self.inner.now() + timedelta(seconds=self._refresh())

    def monotonic(self) -> float:
        """The inner clock's monotonic time: a step does not move it."""
        return self.inner.monotonic()

    def _refresh(self) -> float:
        real = time.monotonic()
        with self._lock:
            if real - self._checked < self._recheck_s:
                return self._step
            self._checked = real
            try:
                stat = self.control_file.stat()
                stamp = (stat.st_ino, stat.st_mtime_ns)
            except FileNotFoundError:
                return self._step
            if stamp != self._stamp:
                self._step = float(json.loads(self.control_file.read_text())["step_s"])
                self._stamp = stamp
            return self._step


def set_wall_step(control_file: Path, step_s: float) -> None:
    """Set the total step of every clock reading ``control_file`` (either way)."""
    tmp = control_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"step_s": step_s}))
    tmp.replace(control_file)  # atomic: a reader sees the old file or the new one


def stepped_from_environment(inner: Clock) -> Clock:
    """``inner``, stepped when a test configuration asks for it."""
    path = os.environ.get(ENV_VAR)
    return SteppedClock(inner, Path(path)) if path else inner
