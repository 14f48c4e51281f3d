"""An alarm suppressed as the symptom of a cause: its untouched ticket is cancelled into the
cause's ticket, which it may make more critical.

This is what makes suppression order-independent: whether the symptom or the cause came first,
one ticket remains, the cause's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.tickets.criticality import criticality_for_alarm, more_severe
from collector.tickets.flows.identity import current_ticket, link_alarm
from collector.tickets.flows.storms import cancel_emptied_storm
from collector.tickets.lifecycle import TicketState
from collector.tickets.models import Ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.sla import reschedule
from collector.tickets.transitions import cancel_untouched


def absorb_symptom(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """A symptom of an open cause: its untouched ticket is cancelled into the cause's ticket."""
    cause = session.get(Alarm, alarm.suppressed_by) if alarm.suppressed_by else None
    cause_ticket = current_ticket(session, alarm=cause) if cause else None
    detail = f"symptom of {cause.alarm_type if cause else 'a cause alarm'} at {alarm.site_id}"
    if cause_ticket is not None:
        detail += f"; handled in ticket {cause_ticket.ref}"
        link_alarm(session, ticket=cause_ticket, alarm=alarm)
        _raise_criticality(session, ticket=cause_ticket, alarm=alarm, now=now)
    ticket = current_ticket(session, alarm=alarm)
    if ticket is None:
        cancel_emptied_storm(session, alarm=alarm, now=now)
        return
    if ticket.state == TicketState.OPENED.value and ticket is not cause_ticket:
        cancel_untouched(session, ticket=ticket, detail=detail, reason="symptom", now=now)
    else:
        log_operation(
            session, ticket=ticket, actor=SYSTEM_ACTOR, action="symptom", now=now, detail=detail
        )
    cancel_emptied_storm(session, alarm=alarm, now=now)


def _raise_criticality(session: Session, *, ticket: Ticket, alarm: Alarm, now: datetime) -> None:
    """A symptom more severe than its cause's ticket raises it (mains lost, then battery low)."""
    level = criticality_for_alarm(
        contract_id=ticket.contract_id, alarm_type=alarm.alarm_type, severity=alarm.severity
    )
    if not more_severe(level, ticket.criticality, contract_id=ticket.contract_id):
        return
    before = ticket.criticality
    ticket.criticality = level
    log_operation(
        session,
        ticket=ticket,
        actor=SYSTEM_ACTOR,
        action="criticality",
        now=now,
        detail=f"{alarm.alarm_type} at {alarm.site_id} raises the criticality",
        before=before,
        after=level,
    )
    reschedule(session, ticket, now=now)
