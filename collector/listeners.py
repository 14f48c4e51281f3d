"""The alarm engine as the collector runs it: what reacts to alarm changes, in the engine's
transaction (tickets, then problems, the live feed, inspections), and who is expected on a site
(planned works, inspections, dispatches). One wiring for ingest, the timers and the API (which
applies a released stream)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.alarms import AlarmEngine, AlarmListener
from collector.alarms.rules import AlarmRules
from collector.feed.service import FeedAlarmListener
from collector.inspections.service import InspectionAlarmListener
from collector.onsite import SitePresence
from collector.problems.listener import ProblemAlarmListener
from collector.tickets.flows import TicketAlarmListener


def alarm_listeners() -> list[AlarmListener]:
    """The listeners of a collector's alarm engine. Problems follow tickets: a recurrence is
    linked to the ticket its alarm has just opened."""
    return [
        TicketAlarmListener(),
        ProblemAlarmListener(),
        FeedAlarmListener(),
        InspectionAlarmListener(),
    ]


def alarm_engine(
    listeners: Sequence[AlarmListener] | None = None, *, rules: AlarmRules | None = None
) -> AlarmEngine:
    """The engine with the collector's listeners (or those given) and its on-site answer."""
    return AlarmEngine(
        alarm_listeners() if listeners is None else listeners,
        on_site=SitePresence(),
        rules=rules,
    )
