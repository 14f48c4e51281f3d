"""The problems' alarm listener: a raised alarm is considered for a recurring problem once
its ticket exists (the ticket listener runs first: ``collector.listeners``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms import Alarm, AlarmChange
from collector.problems.service import consider

_RAISING = {AlarmChange.RAISED, AlarmChange.RERAISED}


class ProblemAlarmListener:
    """Links the ticket of a raised alarm to the problem its recurrences reveal."""

    def alarm_changed(
        self, session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime
    ) -> None:
        """Only a real incident counts: not an inspection's test, not under planned works."""
        if alarm.test or alarm.in_maintenance or change not in _RAISING:
            return
        consider(session, alarm=alarm, now=now)
