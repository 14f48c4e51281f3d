"""A new ticket: its reference, its "opened" operation and its SLA clock, running.

Every ticket enters the lifecycle here, in its initial state (``lifecycle.INITIAL_STATE``, the
model's default), whoever opens it: an alarm, a storm, a client, the NOC, the urgent desk.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.sla import ClockState
from collector.tickets.lifecycle import INITIAL_STATE
from collector.tickets.models import Ticket
from collector.tickets.operations import log_operation
from collector.tickets.sla import record_clock

# Tickets opened from alarms, and incidents the NOC opens, are curative maintenance, counted 24/7.
ALARM_CONTRACT = "curative-24x7"


def open_ticket(
    session: Session, *, ticket: Ticket, actor: str, detail: str, now: datetime
) -> Ticket:
    """Store a new ticket, give it its reference (``TKT-<year>-<id>``), log it opened
    (notifying whom it concerns) and start its SLA clock."""
    session.add(ticket)
    session.flush()
    ticket.ref = f"TKT-{now.year}-{ticket.id:06d}"
    log_operation(
        session,
        ticket=ticket,
        actor=actor,
        action="opened",
        now=now,
        detail=detail,
        after=INITIAL_STATE.value,
    )
    record_clock(
        session,
        ticket,
        state=ClockState.RUNNING,
        at=now,
        reason="opened",
        actor=actor,
        new_ticket=True,
    )
    return ticket
