"""The listener the alarm engine calls inside its transaction: one flow per alarm change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms import Alarm, AlarmChange
from collector.tickets.flows.cleared import on_cause_cleared
from collector.tickets.flows.flapping import note_flapping
from collector.tickets.flows.raised import open_from_alarm
from collector.tickets.flows.storms import attach_to_storm
from collector.tickets.flows.symptoms import absorb_symptom

# Changes that mean "the fault is (again) present".
_RAISING = {AlarmChange.RAISED, AlarmChange.RERAISED}
_CLEARING = {AlarmChange.CLEARED, AlarmChange.RECONCILED_CLEAR}
_BECAME_INCIDENT = {AlarmChange.MAINTENANCE_ENDED, AlarmChange.TEST_EXPIRED}


class TicketAlarmListener:
    """Opens curative tickets from alarms and records re-supervision on clear."""

    def alarm_changed(
        self, session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime
    ) -> None:
        """Open, recur or return to nominal, depending on the change."""
        if alarm.test:
            return  # an inspection trigger is a test result, not an incident
        if change in _CLEARING:
            on_cause_cleared(session, alarm=alarm, now=now)
        elif alarm.in_maintenance:
            return  # recorded, but planned works open no ticket until they end
        elif change in _RAISING or change in _BECAME_INCIDENT:
            # New, raised again while open (a recurrence), still active after planned works, or
            # a test trigger of an inspection that did not return to normal in time.
            open_from_alarm(session, alarm=alarm, now=now)
        elif change is AlarmChange.SUPPRESSED:
            absorb_symptom(session, alarm=alarm, now=now)
        elif change is AlarmChange.STORM_GROUPED:
            attach_to_storm(session, alarm=alarm, now=now)
        elif change is AlarmChange.FLAPPING:
            note_flapping(session, alarm=alarm, now=now)
