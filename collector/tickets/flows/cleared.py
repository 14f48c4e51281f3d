"""A cause alarm cleared: when it was a ticket's last active cause, the return to nominal is
recorded (automatic re-supervision), or the NOC is told to confirm it (manual)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.tickets.lifecycle import OPEN_STATES
from collector.tickets.models import Ticket, TicketAlarm
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.resupervision import active_cause_alarms, resupervision_mode


def on_cause_cleared(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Re-supervision: when the last cause alarm of a ticket clears, record return to nominal
    (automatic), or tell the NOC it has to confirm it (manual)."""
    for ticket in session.scalars(
        select(Ticket)
        .join(TicketAlarm, TicketAlarm.ticket_id == Ticket.id)
        .where(TicketAlarm.alarm_id == alarm.id, Ticket.state.in_([s.value for s in OPEN_STATES]))
    ):
        if active_cause_alarms(session, ticket=ticket) or ticket.return_to_nominal_at is not None:
            continue
        if resupervision_mode(ticket) == "manual":
            log_operation(
                session,
                ticket=ticket,
                actor=SYSTEM_ACTOR,
                action="awaiting_resupervision",
                now=now,
                detail=f"cause alarm {alarm.alarm_type} cleared: the NOC confirms the return"
                " to nominal (manual re-supervision)",
            )
            continue
        ticket.return_to_nominal_at = now
        log_operation(
            session,
            ticket=ticket,
            actor=SYSTEM_ACTOR,
            action="return_to_nominal",
            now=now,
            detail=f"cause alarm {alarm.alarm_type} cleared: back to nominal (re-supervision)",
        )
