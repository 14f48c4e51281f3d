"""The SLA clock: an append-only log of running/frozen intervals, read over a calendar.

Nothing is stored but the log; elapsed time, deadline and due escalations are derived from it
on every read, so a change of criticality, contract or calendar never loses frozen time
(a known defect of SLA engines that store a shifted deadline instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from clocks import utc
from collector.sla.calendar import Calendar


class ClockState(StrEnum):
    """What the clock does from an event on."""

    RUNNING = "running"
    FROZEN = "frozen"  # waiting for the client: the clock is stopped
    PLANNED_WORKS = "planned_works"  # under a maintenance window: excluded
    STOPPED = "stopped"  # restored or closed


@dataclass(frozen=True, slots=True)
class ClockEvent:
    """One entry of the append-only log."""

    at: datetime
    state: ClockState
    reason: str = ""
    actor: str = "system"


@dataclass(frozen=True, slots=True)
class SlaFigures:
    """Where the wall-clock time of a ticket went; the five parts add up to ``wall_s``."""

    elapsed_s: float
    out_of_hours_s: float
    frozen_s: float
    planned_works_s: float
    stopped_s: float
    wall_s: float


class ClockLogError(ValueError):
    """The log is not in time order or does not start running."""


def _intervals(
    events: Sequence[ClockEvent], now: datetime
) -> Iterator[tuple[ClockState, datetime, datetime]]:
    if not events:
        raise ClockLogError("an SLA clock log starts with the ticket's opening")
    for i, event in enumerate(events):
        end = events[i + 1].at if i + 1 < len(events) else max(now, event.at)
        if utc(end) < utc(event.at):
            raise ClockLogError(f"clock event {i + 1} at {end} is before event {i} at {event.at}")
        yield event.state, utc(event.at), utc(end)


def figures(events: Sequence[ClockEvent], *, calendar: Calendar, now: datetime) -> SlaFigures:
    """Counted, out-of-hours, frozen, planned-works and stopped time up to ``now``."""
    parts = dict.fromkeys(ClockState, 0.0)
    out_of_hours = 0.0
    for state, start, end in _intervals(events, now):
        wall = (end - start).total_seconds()
        if state is ClockState.RUNNING:
            counted = calendar.working_seconds(start, end)
            parts[state] += counted
            out_of_hours += wall - counted
        else:
            parts[state] += wall
    return SlaFigures(
        elapsed_s=parts[ClockState.RUNNING],
        out_of_hours_s=out_of_hours,
        frozen_s=parts[ClockState.FROZEN],
        planned_works_s=parts[ClockState.PLANNED_WORKS],
        stopped_s=parts[ClockState.STOPPED],
        wall_s=(max(utc(now), utc(events[-1].at)) - utc(events[0].at)).total_seconds(),
    )


def instant_of_elapsed(
    events: Sequence[ClockEvent], *, calendar: Calendar, target_s: float, now: datetime
) -> datetime | None:
    """When counted time reaches ``target_s``: in the past if it did, in the future if the clock
    runs now, None while it is paused before reaching it."""
    counted = 0.0
    for i, (state, start, end) in enumerate(_intervals(events, now)):
        if state is not ClockState.RUNNING:
            continue
        is_last = i == len(events) - 1
        span = calendar.working_seconds(start, end)
        if counted + span >= target_s or is_last:
            return calendar.add_working(start, target_s - counted)
        counted += span
    return None


def deadline(
    events: Sequence[ClockEvent], *, calendar: Calendar, gtr_s: float, now: datetime
) -> datetime | None:
    """The GTR deadline as of now (None while the clock is paused short of it)."""
    return instant_of_elapsed(events, calendar=calendar, target_s=gtr_s, now=now)


def due_thresholds(
    events: Sequence[ClockEvent],
    *,
    calendar: Calendar,
    gtr_s: float,
    fractions: Sequence[float],
    fired: set[float],
    now: datetime,
) -> list[float]:
    """Escalation thresholds reached and not yet fired; none fire while the clock is frozen."""
    if events[-1].state is not ClockState.RUNNING:
        return []
    elapsed = figures(events, calendar=calendar, now=now).elapsed_s
    return [f for f in sorted(fractions) if f not in fired and elapsed >= f * gtr_s]


def next_timer(
    events: Sequence[ClockEvent],
    *,
    calendar: Calendar,
    gtr_s: float,
    fractions: Sequence[float],
    fired: set[float],
    now: datetime,
) -> datetime | None:
    """The exact instant the next unfired threshold is reached (None while paused)."""
    if events[-1].state is not ClockState.RUNNING:
        return None
    pending = [f for f in sorted(fractions) if f not in fired]
    if not pending:
        return None
    when = instant_of_elapsed(events, calendar=calendar, target_s=pending[0] * gtr_s, now=now)
    # A threshold already passed but not fired (the timer was late) is due right now.
    return None if when is None else max(when, utc(now))
