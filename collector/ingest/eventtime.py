"""Event time: an agent message's edge times put on the collector's clock (docs/protocol.md,
"Time").

One rule for everything a message dates (an alarm's raise or clear, a state event, each
telemetry sample, a birth's ``since``): add the message's ``clock_offset_s``, the collector
time minus edge time the agent measured on live round trips when it recorded the message.
Without one, a synchronised edge clock is taken as it is, and an unsynchronised (or stepped)
one is replaced by the receive time: the message's own ``ts`` becomes its receive time and
what it dates moves with it.

Heartbeats are not used: a heartbeat that waited behind a half-open link says nothing about
the clock, only about the link.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

_ZERO = timedelta(0)


class Dated(Protocol):
    """The envelope fields event time reads."""

    @property
    def ts(self) -> datetime: ...

    @property
    def clock_synced(self) -> bool: ...

    @property
    def clock_offset_s(self) -> float | None: ...


def correction(message: Dated, *, received_at: datetime) -> timedelta:
    """What to add to the edge times of ``message`` to put them on the collector's clock."""
    if message.clock_offset_s is not None:
        return timedelta(seconds=message.clock_offset_s)
    if message.clock_synced:
        return _ZERO
    return received_at - message.ts


def event_time(message: Dated, *, received_at: datetime) -> datetime:
    """When ``message`` (an alarm or state event) happened, on the collector's clock."""
    try:
        return message.ts + correction(message, received_at=received_at)
    except OverflowError:
        # An offset that takes the time out of the calendar: the clock says nothing usable.
        return received_at


def shifted(edge: datetime, delta: timedelta, *, fallback: datetime) -> datetime:
    """``edge + delta``, or ``fallback`` when that leaves the calendar."""
    try:
        return edge + delta
    except OverflowError:
        return fallback
