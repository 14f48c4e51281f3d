"""Contract calendars: 24/7, or working hours with French public holidays (Europe/Paris).

Working time is computed day by day in local time, so DST changes, holidays and weekends are
exact; results are in whole seconds (the SLA is read at minute precision).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays

from clocks import utc


class Calendar(Protocol):
    """How much of a wall-clock span counts for the SLA."""

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Counted seconds between two instants."""
        ...

    def add_working(self, start: datetime, seconds: float) -> datetime:
        """The instant at which ``seconds`` of counted time have passed since ``start``."""
        ...


class AlwaysOn:
    """24/7: every second counts."""

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Wall-clock seconds."""
        return max(0.0, (utc(end) - utc(start)).total_seconds())

    def add_working(self, start: datetime, seconds: float) -> datetime:
        """``start + seconds``."""
        return utc(start) + timedelta(seconds=seconds)


@lru_cache(maxsize=64)
def _french_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("FR", years=year).keys())


@dataclass(frozen=True)
class WorkingHours:
    """Opening hours on given weekdays (0 = Monday), closed on French public holidays."""

    opens: time = time(8, 0)
    closes: time = time(18, 0)
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))
    timezone: str = "Europe/Paris"
    public_holidays: bool = True

    def _windows(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open windows (UTC) intersecting [start, end]."""
        tz = ZoneInfo(self.timezone)
        day = utc(start).astimezone(tz).date()
        last = utc(end).astimezone(tz).date()
        while day <= last:
            if self.is_open_day(day):
                opens = datetime.combine(day, self.opens, tz).astimezone(UTC)
                closes = datetime.combine(day, self.closes, tz).astimezone(UTC)
                yield opens, closes
            day += timedelta(days=1)

    def is_open_day(self, day: date) -> bool:
        """True on an opening weekday that is not a public holiday."""
        if day.weekday() not in self.weekdays:
            return False
        return not (self.public_holidays and day in _french_holidays(day.year))

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds inside opening hours between two instants."""
        start, end = utc(start), utc(end)
        if end <= start:
            return 0.0
        total = 0.0
        for opens, closes in self._windows(start, end):
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        return total

    def add_working(self, start: datetime, seconds: float) -> datetime:
        """Walk forward through opening hours until ``seconds`` are consumed."""
        start = utc(start)
        remaining = max(0.0, seconds)
        horizon = start
        while True:
            horizon += timedelta(days=31)  # a long closure (Christmas) cannot stall this
            for opens, closes in self._windows(start, horizon):
                lo = max(opens, start)
                if closes <= lo:
                    continue
                span = (closes - lo).total_seconds()
                if remaining <= span:
                    # Exactly at a window's end counts as reached there, not at the next opening.
                    return lo + timedelta(seconds=remaining) if remaining > 0 else lo
                remaining -= span
            start = horizon


def calendar_from_spec(kind: str) -> Calendar:
    """Calendars named in contract files."""
    if kind == "24x7":
        return AlwaysOn()
    if kind == "working_hours":
        return WorkingHours()
    if kind == "urgent_desk":
        # Monday to Saturday, 08:00-17:00 (the operator's "guichet unique").
        return WorkingHours(opens=time(8, 0), closes=time(17, 0), weekdays=frozenset(range(6)))
    raise ValueError(f"unknown calendar {kind!r}: expected 24x7, working_hours or urgent_desk")
