"""A ticket's SLA: its clock log, figures over its contract's calendar, timers and escalations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.sla import ClockEvent, ClockState, deadline, due_thresholds, figures, next_timer
from collector.sla.contracts import load_contracts
from collector.tickets.lifecycle import TicketState
from collector.tickets.models import Ticket, TicketClockEvent, TicketEscalation

# Which clock state each ticket state puts the SLA clock in.
CLOCK_FOR_STATE = {
    TicketState.OPENED: ClockState.RUNNING,
    TicketState.QUALIFIED: ClockState.RUNNING,
    TicketState.IN_PROGRESS: ClockState.RUNNING,
    TicketState.WAITING_CLIENT: ClockState.FROZEN,
    TicketState.RESTORED: ClockState.STOPPED,
    TicketState.CLOSED: ClockState.STOPPED,
    TicketState.CANCELLED: ClockState.STOPPED,
}


@dataclass(frozen=True)
class SlaView:
    """What the API and the dashboard show of a ticket's SLA."""

    contract_id: str
    calendar: str
    gtr_min: float
    clock: str
    elapsed_min: float
    frozen_min: float
    out_of_hours_min: float
    planned_works_min: float
    deadline: datetime | None
    remaining_min: float
    breached: bool
    escalations_fired: list[float]
    penalty_eur: float


def clock_log(session: Session, ticket: Ticket) -> list[ClockEvent]:
    """The ticket's clock log in order."""
    rows = session.scalars(
        select(TicketClockEvent)
        .where(TicketClockEvent.ticket_id == ticket.id)
        .order_by(TicketClockEvent.id)
    )
    return [ClockEvent(r.at, ClockState(r.state), r.reason, r.actor) for r in rows]


def record_clock(
    session: Session, ticket: Ticket, *, state: ClockState, at: datetime, reason: str, actor: str
) -> None:
    """Append to the clock log when the clock state changes, then reschedule the next timer."""
    log = clock_log(session, ticket)
    if not log or log[-1].state is not state:
        session.add(
            TicketClockEvent(
                ticket_id=ticket.id, at=at, state=state.value, reason=reason, actor=actor
            )
        )
        session.flush()
    reschedule(session, ticket, now=at)


def _fired(session: Session, ticket: Ticket) -> set[float]:
    return set(
        session.scalars(
            select(TicketEscalation.fraction).where(TicketEscalation.ticket_id == ticket.id)
        )
    )


def reschedule(session: Session, ticket: Ticket, *, now: datetime) -> None:
    """Store the exact instant of the ticket's next SLA timer (derived, recomputed on change)."""
    contract = load_contracts().get(ticket.contract_id)
    log = clock_log(session, ticket)
    ticket.next_timer_at = (
        next_timer(
            log,
            calendar=contract.calendar_obj(),
            gtr_s=contract.gtr_s(ticket.criticality),
            fractions=contract.escalation_fractions,
            fired=_fired(session, ticket),
            now=now,
        )
        if log
        else None
    )


def sla_view(session: Session, ticket: Ticket, *, now: datetime) -> SlaView:
    """Figures as of ``now`` over the current contract (frozen time survives any change)."""
    contract = load_contracts().get(ticket.contract_id)
    calendar = contract.calendar_obj()
    gtr_s = contract.gtr_s(ticket.criticality)
    log = clock_log(session, ticket)
    f = figures(log, calendar=calendar, now=now)
    due = deadline(log, calendar=calendar, gtr_s=gtr_s, now=now)
    late_s = max(0.0, f.elapsed_s - gtr_s)
    return SlaView(
        contract_id=ticket.contract_id,
        calendar=contract.calendar,
        gtr_min=gtr_s / 60,
        clock=log[-1].state.value,
        elapsed_min=round(f.elapsed_s / 60, 1),
        frozen_min=round(f.frozen_s / 60, 1),
        out_of_hours_min=round(f.out_of_hours_s / 60, 1),
        planned_works_min=round(f.planned_works_s / 60, 1),
        deadline=due,
        remaining_min=round((gtr_s - f.elapsed_s) / 60, 1),
        breached=f.elapsed_s > gtr_s,
        escalations_fired=sorted(_fired(session, ticket)),
        penalty_eur=contract.penalty.amount(late_s),
    )


def fire_due_escalations(session: Session, ticket: Ticket, *, now: datetime) -> list[float]:
    """Fire every threshold reached (once each, never while frozen); returns those fired."""
    contract = load_contracts().get(ticket.contract_id)
    due = due_thresholds(
        clock_log(session, ticket),
        calendar=contract.calendar_obj(),
        gtr_s=contract.gtr_s(ticket.criticality),
        fractions=contract.escalation_fractions,
        fired=_fired(session, ticket),
        now=now,
    )
    for fraction in due:
        session.add(TicketEscalation(ticket_id=ticket.id, fraction=fraction, fired_at=now))
    session.flush()
    return due
