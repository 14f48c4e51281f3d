"""What reacts to alarm changes, in the engine's transaction: tickets, the live feed,
inspections. One list for ingest, the timers and the API (which applies a released stream)."""

from __future__ import annotations

from collector.alarms import AlarmListener
from collector.feed.service import FeedAlarmListener
from collector.inspections.service import InspectionAlarmListener
from collector.tickets.flows import TicketAlarmListener


def alarm_listeners() -> list[AlarmListener]:
    """The listeners of a collector's alarm engine."""
    return [TicketAlarmListener(), FeedAlarmListener(), InspectionAlarmListener()]
