"""A clock that test runs can move forward, shared by every process of a simulated site.

Long processes (48 h auto-close, escalation thresholds, a month of SLA) cannot be waited for in
a scenario. The runner writes jumps into a control file; every process started with
``SHELTERWATCH_TEST_CLOCK`` pointing at that file reads its time as the system time plus the
jumps so far. Both ``now()`` and ``monotonic()`` jump, so agent delays and collector deadlines
move together. Agent presence must not mistake a jump for silence: ``jumped_within`` tells the
presence check how much time was skipped lately, and a jump is excused for one heartbeat
timeout of real time — long enough for every live agent to be heard again.

Only a test configuration sets the variable; a production unit never does (the processes log
a warning when it is set).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clocks.clock import Clock

ENV_VAR = "SHELTERWATCH_TEST_CLOCK"
_RECHECK_S = 0.05  # how often a reader looks at the control file (a stat, no read)


class WarpClock:
    """System time plus the jumps written in ``control_file`` (absent file: no jump)."""

    def __init__(self, control_file: Path, *, recheck_s: float = _RECHECK_S) -> None:
        self.control_file = control_file
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._checked = -1e9
        self._offset = 0.0
        self._jumps: list[tuple[float, float]] = []

    def now(self) -> datetime:
        """System time moved forward by every jump so far."""
        return datetime.now(UTC) + timedelta(seconds=self._refresh())

    def monotonic(self) -> float:
        """``time.monotonic()`` moved forward by every jump so far."""
        return time.monotonic() + self._refresh()

    def jumped_within(self, real_s: float) -> float:
        """Seconds skipped by jumps made during the last ``real_s`` seconds of real time."""
        self._refresh()
        since = time.time() - real_s
        with self._lock:
            return sum(seconds for at, seconds in self._jumps if at >= since)

    def _refresh(self) -> float:
        real = time.monotonic()
        with self._lock:
            if real - self._checked < self._recheck_s:
                return self._offset
            self._checked = real
            try:
                stamp = self.control_file.stat().st_mtime_ns
            except FileNotFoundError:
                return self._offset
            if stamp != self._stamp:
                data = json.loads(self.control_file.read_text())
                self._offset = float(data["offset_s"])
                self._jumps = [(float(at), float(s)) for at, s in data["jumps"]]
                self._stamp = stamp
            return self._offset


def advance(control_file: Path, seconds: float) -> float:
    """Jump every process reading ``control_file`` forward; returns the total offset."""
    if seconds < 0:
        raise ValueError("a clock only moves forward")
    offset, jumps = 0.0, []
    if control_file.exists():
        data = json.loads(control_file.read_text())
        offset, jumps = float(data["offset_s"]), list(data["jumps"])
    offset += seconds
    jumps.append([time.time(), seconds])
    tmp = control_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"offset_s": offset, "jumps": jumps}))
    tmp.replace(control_file)  # atomic: a reader sees the old file or the new one
    return offset


def jumped_within(clock: Clock, real_s: float) -> float:
    """Time skipped lately by a test clock; always 0 for the real one."""
    return clock.jumped_within(real_s) if isinstance(clock, WarpClock) else 0.0


def clock_from_environment() -> Clock:
    """The system clock, or the test clock when a test configuration asks for it."""
    from clocks.clock import SystemClock

    path = os.environ.get(ENV_VAR)
    return WarpClock(Path(path)) if path else SystemClock()
