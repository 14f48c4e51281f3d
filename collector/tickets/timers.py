"""What time does to tickets: SLA thresholds fire (escalating), restored tickets auto-close.

The scheduler runs ``run_due_timers`` every tick; it is idempotent, and several collector
instances may run it at once (rows being changed elsewhere are skipped until the next tick).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.tickets.escalation import level_for_fraction, raise_level
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.sla import fire_due_escalations, reschedule
from collector.tickets.transitions import move

AUTO_CLOSE_AFTER = timedelta(hours=48)


def run_sla_timers(session: Session, *, now: datetime) -> int:
    """Fire the escalation thresholds that are due (exact timers stored on each ticket)."""
    fired_total = 0
    for ticket in session.scalars(
        select(Ticket)
        .where(Ticket.next_timer_at <= now, Ticket.state.in_([s.value for s in OPEN_STATES]))
        # A ticket being changed elsewhere (ingest, an operator) is taken at the next tick,
        # with its timers recomputed from what that change left.
        .with_for_update(skip_locked=True)
    ):
        fired = fire_due_escalations(session, ticket, now=now)
        for fraction in fired:
            level = level_for_fraction(fraction)
            if fraction >= 1.0:
                ticket.sla_breached = True
            detail = f"SLA at {fraction:.0%} of the GTR"
            if level > ticket.escalation_level:
                raise_level(
                    session, ticket=ticket, level=level, actor=SYSTEM_ACTOR, now=now, detail=detail
                )
            else:
                log_operation(
                    session,
                    ticket=ticket,
                    actor=SYSTEM_ACTOR,
                    action="sla_threshold",
                    now=now,
                    detail=detail,
                )
        fired_total += len(fired)
        reschedule(session, ticket, now=now)
    return fired_total


def run_due_timers(session: Session, *, now: datetime) -> int:
    """SLA thresholds, then auto-close of tickets restored 48 wall-clock hours ago; idempotent."""
    run_sla_timers(session, now=now)
    due = list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.state == TicketState.RESTORED.value,
                Ticket.restored_at <= now - AUTO_CLOSE_AFTER,
            )
            # One a client is confirming or refusing right now is skipped, and seen next tick.
            .with_for_update(skip_locked=True)
        )
    )
    for ticket in due:
        move(
            session,
            ticket=ticket,
            to=TicketState.CLOSED,
            actor=SYSTEM_ACTOR,
            now=now,
            detail="closed automatically 48 h after the restoration notice",
            action="auto_closed",
            clock_reason="auto-closed",
        )
    return len(due)
