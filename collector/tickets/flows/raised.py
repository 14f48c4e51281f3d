"""An alarm raised (or still active after planned works): a new curative ticket, or a
recurrence on the open one (which reopens it if it was restored)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.tickets.criticality import criticality_for_alarm
from collector.tickets.flows.identity import alarm_identity, latest_ticket, link_alarm
from collector.tickets.lifecycle import TicketState
from collector.tickets.models import Ticket, TicketAlarm
from collector.tickets.opening import ALARM_CONTRACT, open_ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.transitions import move


def open_from_alarm(session: Session, *, alarm: Alarm, now: datetime) -> Ticket:
    """Open a curative-maintenance ticket for an alarm (clock 24/7), or record a recurrence."""
    latest = latest_ticket(session, alarm=alarm)
    if latest is not None and latest.state != TicketState.CLOSED:
        _recur(session, ticket=latest, alarm=alarm, now=now)
        return latest
    previous = latest  # closed, or None
    ticket = Ticket(
        source="alarm",
        kind="curative",
        site_id=alarm.site_id,
        alarm_identity=alarm_identity(alarm),
        title=f"{alarm.alarm_type} at {alarm.site_id} ({alarm.equipment_id}/{alarm.point})",
        description=alarm.reason,
        criticality=criticality_for_alarm(
            contract_id=ALARM_CONTRACT, alarm_type=alarm.alarm_type, severity=alarm.severity
        ),
        contract_id=ALARM_CONTRACT,
        opened_at=now,
        updated_at=now,
        previous_ticket_id=previous.id if previous is not None else None,
    )
    detail = f"opened from alarm {alarm.alarm_type} ({alarm.severity})"
    if previous is not None:
        detail += f"; follows closed ticket {previous.ref}"
    open_ticket(session, ticket=ticket, actor=SYSTEM_ACTOR, detail=detail, now=now)
    session.add(TicketAlarm(ticket_id=ticket.id, alarm_id=alarm.id))
    return ticket


def _recur(session: Session, *, ticket: Ticket, alarm: Alarm, now: datetime) -> None:
    """The same fault again before closure: the same ticket, reopened if it was restored.

    An acknowledged alarm raised again is someone's already: the recurrence is counted, logged
    and moves the ticket and its clock as ever, but notifies nobody (the acknowledgement is
    what stops an alarm re-notifying; ``collector.alarms.acknowledgement``)."""
    link_alarm(session, ticket=ticket, alarm=alarm)
    ticket.recurrences += 1
    detail = f"{alarm.alarm_type} raised again on {alarm.equipment_id}/{alarm.point}"
    notify = not alarm.is_acknowledged
    if alarm.is_acknowledged:
        by = alarm.acknowledged_by
        detail += f" (acquittée par {by} : non notifiée / acknowledged by {by}: not notified)"
    if ticket.state != TicketState.RESTORED:
        log_operation(
            session,
            ticket=ticket,
            actor=SYSTEM_ACTOR,
            action="recurrence",
            now=now,
            detail=detail,
            notify=notify,
        )
        return
    ticket.return_to_nominal_at = None  # not nominal any more: re-supervision starts again
    move(
        session,
        ticket=ticket,
        to=TicketState.IN_PROGRESS,
        actor=SYSTEM_ACTOR,
        now=now,
        detail=detail,
        action="recurrence",
        clock_reason="recurrence",
        notify=notify,
    )
