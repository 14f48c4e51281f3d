"""Escalation levels 1 -> 2 -> 3: by hand (the NOC), or on SLA thresholds (``timers``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.identity.access import Action, Principal, require
from collector.tickets.errors import EscalationLimit
from collector.tickets.models import Ticket
from collector.tickets.operations import log_operation
from collector.tickets.queries import get_ticket

MAX_ESCALATION = 3


def level_for_fraction(fraction: float) -> int:
    """Escalation level reached at a share of the GTR: 75 % -> level 2, 100 % -> level 3."""
    return 3 if fraction >= 1.0 else 2 if fraction >= 0.75 else 1


def escalate(
    session: Session, *, ref: str, principal: Principal, now: datetime, detail: str
) -> Ticket:
    """Escalate by hand one level (1 -> 2 -> 3)."""
    require(principal, Action.TICKET_ESCALATE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if ticket.escalation_level >= MAX_ESCALATION:
        raise EscalationLimit(f"ticket {ref} is already at escalation level {MAX_ESCALATION}")
    raise_level(
        session,
        ticket=ticket,
        level=ticket.escalation_level + 1,
        actor=principal.user_id,
        now=now,
        detail=detail,
    )
    return ticket


def raise_level(
    session: Session, *, ticket: Ticket, level: int, actor: str, now: datetime, detail: str
) -> None:
    """Put the ticket at escalation ``level`` and log it (``escalated`` notifies the matrix)."""
    before = ticket.escalation_level
    ticket.escalation_level = level
    log_operation(
        session,
        ticket=ticket,
        actor=actor,
        action="escalated",
        now=now,
        detail=detail,
        before=str(before),
        after=str(level),
    )
