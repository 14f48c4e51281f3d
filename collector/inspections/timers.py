"""Inspection timers: a fire past its limit and tests outliving their inspection become real."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms.engine import AlarmEngine
from collector.inspections.service import end_expired, overdue_test_alarms


def run_inspection_timers(session: Session, *, engine: AlarmEngine, now: datetime) -> None:
    """Idempotent: each overdue test alarm is made real once."""
    end_expired(session, now=now)
    for alarm in overdue_test_alarms(session, now=now):
        engine.test_became_real(session, alarm=alarm, now=now)
