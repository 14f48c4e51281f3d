"""An alarm's tickets, found by its identity (site, equipment, point, alarm type)."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket, TicketAlarm

# Statements the alarm path runs for every event, built once (building costs more than running).
_OF_IDENTITY = select(Ticket).where(Ticket.alarm_identity == bindparam("identity"))
_LATEST_FOR_IDENTITY = (
    _OF_IDENTITY.where(
        Ticket.state.in_([s.value for s in OPEN_STATES] + [TicketState.CLOSED.value])
    )
    .order_by(Ticket.id.desc())
    .limit(1)
)
_OPEN_FOR_IDENTITY = _OF_IDENTITY.where(Ticket.state.in_([s.value for s in OPEN_STATES])).order_by(
    Ticket.id.desc()
)


def alarm_identity(alarm: Alarm) -> str:
    """The identity key of an alarm: site, equipment, point, alarm type."""
    return "/".join((alarm.site_id, alarm.equipment_id, alarm.point, alarm.alarm_type))


def latest_ticket(session: Session, *, alarm: Alarm) -> Ticket | None:
    """The open ticket of this alarm identity, or else its last closed one (cancelled ones are
    not followed up). At most one is open, and it is always the newest."""
    return session.scalars(_LATEST_FOR_IDENTITY, {"identity": alarm_identity(alarm)}).first()


def current_ticket(session: Session, *, alarm: Alarm) -> Ticket | None:
    """The open ticket of this alarm identity, if any."""
    return session.scalars(_OPEN_FOR_IDENTITY, {"identity": alarm_identity(alarm)}).first()


def link_alarm(session: Session, *, ticket: Ticket, alarm: Alarm) -> None:
    """Record the alarm among the ticket's causes (once)."""
    if session.get(TicketAlarm, (ticket.id, alarm.id)) is None:
        session.add(TicketAlarm(ticket_id=ticket.id, alarm_id=alarm.id))
