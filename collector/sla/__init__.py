"""SLA: contract calendars and the append-only ticket clock (pure domain logic)."""

from collector.sla.calendar import AlwaysOn, Calendar, WorkingHours, calendar_from_spec
from collector.sla.clock import (
    ClockEvent,
    ClockLogError,
    ClockState,
    SlaFigures,
    deadline,
    due_thresholds,
    figures,
    instant_of_elapsed,
    next_timer,
)

__all__ = [
    "AlwaysOn",
    "Calendar",
    "ClockEvent",
    "ClockLogError",
    "ClockState",
    "SlaFigures",
    "WorkingHours",
    "calendar_from_spec",
    "deadline",
    "due_thresholds",
    "figures",
    "instant_of_elapsed",
    "next_timer",
]
