"""An alarm flapping: its ticket says so, and stays quiet until the alarm is stable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.tickets.flows.identity import current_ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation


def note_flapping(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Say on the ticket that its alarm flaps and stays quiet until stable."""
    ticket = current_ticket(session, alarm=alarm)
    if ticket is not None:
        log_operation(
            session,
            ticket=ticket,
            actor=SYSTEM_ACTOR,
            action="flapping",
            now=now,
            detail=f"{alarm.alarm_type} is flapping: quiet until stable",
        )
