"""Re-supervision: is the site back to nominal once the cause alarms have cleared?

Automatic by default (the clear of the last cause alarm records the return to nominal, see
``flows.cleared``); manual when the contract or the alarm type says so: the NOC confirms it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.identity.access import Action, Principal, require
from collector.sla.contracts import load_contracts
from collector.tickets.criticality import load_criticality_map
from collector.tickets.errors import ResupervisionRequired, TicketConflict
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket, TicketAlarm
from collector.tickets.operations import log_operation
from collector.tickets.queries import get_ticket

# The alarm path asks this for every event: the statement is built once (building costs more
# than running).
_ACTIVE_CAUSE_ALARMS = (
    select(func.count())
    .select_from(TicketAlarm)
    .join(Alarm, Alarm.id == TicketAlarm.alarm_id)
    .where(TicketAlarm.ticket_id == bindparam("ticket_id"), Alarm.state != "cleared")
)


def active_cause_alarms(session: Session, *, ticket: Ticket) -> int:
    """How many of the ticket's cause alarms are not cleared."""
    return session.scalar(_ACTIVE_CAUSE_ALARMS, {"ticket_id": ticket.id}) or 0


def _has_cause_alarms(session: Session, ticket: Ticket) -> bool:
    first = session.scalar(
        select(Alarm.id)
        .join(TicketAlarm, TicketAlarm.alarm_id == Alarm.id)
        .where(TicketAlarm.ticket_id == ticket.id)
        .limit(1)
    )
    return first is not None


def resupervision_mode(ticket: Ticket) -> str:
    """``manual`` when the contract or one of the cause alarm types says so, else ``automatic``."""
    if load_contracts().get(ticket.contract_id).resupervision == "manual":
        return "manual"
    # The type of the alarm that opened the ticket is the last part of its identity (no query:
    # ticket lists ask this for every row). Fire, the shipped manual type, is never a symptom.
    opening_type = (ticket.alarm_identity or "").rsplit("/", 1)[-1]
    manual_types = load_criticality_map().manual_resupervision
    return "manual" if opening_type in manual_types else "automatic"


def confirm_resupervision(
    session: Session,
    *,
    ref: str,
    principal: Principal,
    now: datetime,
    at: datetime | None = None,
    detail: str = "",
) -> Ticket:
    """Manual re-supervision: the NOC confirms the return to nominal (at ``at``, default now)."""
    require(principal, Action.TICKET_RESUPERVISE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if TicketState(ticket.state) not in OPEN_STATES:
        raise TicketConflict(f"ticket {ref} is {ticket.state}: nothing to re-supervise")
    if ticket.return_to_nominal_at is not None:
        raise TicketConflict(
            f"ticket {ref} is already back to nominal since"
            f" {ticket.return_to_nominal_at.isoformat(timespec='minutes')}"
        )
    active = active_cause_alarms(session, ticket=ticket)
    if active:
        raise TicketConflict(
            f"ticket {ref}: {active} cause alarm(s) still active; the site is not back to nominal"
        )
    when = at or now
    if when > now:
        raise TicketConflict(f"ticket {ref}: the return to nominal cannot be in the future")
    ticket.return_to_nominal_at = when
    log_operation(
        session,
        ticket=ticket,
        actor=principal.user_id,
        action="return_to_nominal",
        now=now,
        detail=(f"confirmed by the NOC (manual re-supervision) {detail}").strip(),
    )
    return ticket


def check_restorable(session: Session, *, ticket: Ticket) -> None:
    """Raise ``TicketConflict`` while a cause alarm is active or a manual re-supervision is due."""
    ref = ticket.ref or ""
    active = active_cause_alarms(session, ticket=ticket)
    if active:
        raise TicketConflict(
            f"ticket {ref}: {active} cause alarm(s) still active; restore once cleared"
        )
    if (
        _has_cause_alarms(session, ticket)
        and ticket.return_to_nominal_at is None
        and resupervision_mode(ticket) == "manual"
    ):
        raise ResupervisionRequired(ref)
