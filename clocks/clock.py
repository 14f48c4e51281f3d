"""Clock objects: the system clock for production, a manual clock for tests and simulations."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; naive datetimes are refused."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: only timezone-aware datetimes are accepted")
    return dt.astimezone(UTC)


class Clock(Protocol):
    """What domain code may ask of time."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for timeouts and rates)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current wall-clock time in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; thread-safe so tests can drive it from outside."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start is not None else datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time the clock was last set or advanced to."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds advanced since creation."""
        with self._lock:
            return self._mono

    def advance(
        self, *, seconds: float = 0.0, minutes: float = 0.0, hours: float = 0.0
    ) -> datetime:
        """Move time forward and return the new time."""
        delta = timedelta(seconds=seconds, minutes=minutes, hours=hours)
        if delta < timedelta(0):
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += delta
            self._mono += delta.total_seconds()
            return self._now

    def step_wall(self, seconds: float) -> datetime:
        """Step the wall clock only, either way, as a misset system clock steps: the monotonic
        clock does not move. Returns the new wall time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards)."""
        target = utc(when)
        with self._lock:
            if target < self._now:
                raise ValueError(f"cannot move clock back from {self._now} to {target}")
            self._mono += (target - self._now).total_seconds()
            self._now = target
