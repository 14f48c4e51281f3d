"""A ticket's SLA: its clock log, figures over its contract's calendar, timers and escalations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy import select
from sqlalchemy.orm import Session

from clocks import utc
from collector.sla import ClockEvent, ClockState, deadline, due_thresholds, figures, next_timer
from collector.sla.calendar import Calendar
from collector.sla.contracts import load_contracts
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket, TicketClockEvent, TicketEscalation
from collector.tickets.schemas import SlaRead

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


def clock_log(session: Session, ticket: Ticket) -> list[ClockEvent]:
    """The ticket's clock log in order."""
    rows = session.scalars(
        select(TicketClockEvent)
        .where(TicketClockEvent.ticket_id == ticket.id)
        .order_by(TicketClockEvent.id)
    )
    return [ClockEvent(r.at, ClockState(r.state), r.reason, r.actor) for r in rows]


def record_clock(
    session: Session,
    ticket: Ticket,
    *,
    state: ClockState,
    at: datetime,
    reason: str,
    actor: str,
    new_ticket: bool = False,
) -> None:
    """Append to the clock log when the clock state changes, then reschedule the next timer.

    ``new_ticket``: the ticket was just opened, it has no log and no fired threshold yet.
    """
    log = [] if new_ticket else clock_log(session, ticket)
    if not log or log[-1].state is not state:
        session.add(
            TicketClockEvent(
                ticket_id=ticket.id, at=at, state=state.value, reason=reason, actor=actor
            )
        )
        log.append(ClockEvent(at, state, reason, actor))
    reschedule(session, ticket, now=at, log=log, fired=set() if new_ticket else None)


def _fired(session: Session, ticket: Ticket) -> set[float]:
    return set(
        session.scalars(
            select(TicketEscalation.fraction).where(TicketEscalation.ticket_id == ticket.id)
        )
    )


def reschedule(
    session: Session,
    ticket: Ticket,
    *,
    now: datetime,
    log: list[ClockEvent] | None = None,
    fired: set[float] | None = None,
) -> None:
    """Store the exact instant of the ticket's next SLA timer (derived, recomputed on change)."""
    contract = load_contracts().get(ticket.contract_id)
    log = clock_log(session, ticket) if log is None else log
    if not log or log[-1].state is not ClockState.RUNNING:
        ticket.next_timer_at = None  # no timer runs while the clock is paused or stopped
        return
    ticket.next_timer_at = next_timer(
        log,
        calendar=contract.calendar_obj(),
        gtr_s=contract.gtr_s(ticket.criticality),
        fractions=contract.escalation_fractions,
        fired=_fired(session, ticket) if fired is None else fired,
        now=now,
    )


def sla_views(session: Session, tickets: list[Ticket], *, now: datetime) -> dict[int, SlaRead]:
    """``sla_view`` for a page of tickets with two queries in all, not two per ticket."""
    ids = [t.id for t in tickets]
    logs: dict[int, list[ClockEvent]] = {i: [] for i in ids}
    for row in session.scalars(
        select(TicketClockEvent)
        .where(TicketClockEvent.ticket_id.in_(ids))
        .order_by(TicketClockEvent.ticket_id, TicketClockEvent.id)
    ):
        logs[row.ticket_id].append(ClockEvent(row.at, ClockState(row.state), row.reason, row.actor))
    fired: dict[int, set[float]] = {i: set() for i in ids}
    for ticket_id, fraction in session.execute(
        select(TicketEscalation.ticket_id, TicketEscalation.fraction).where(
            TicketEscalation.ticket_id.in_(ids)
        )
    ):
        fired[ticket_id].add(fraction)
    return {t.id: sla_view(session, t, now=now, log=logs[t.id], fired=fired[t.id]) for t in tickets}


def sla_view(
    session: Session,
    ticket: Ticket,
    *,
    now: datetime,
    log: list[ClockEvent] | None = None,
    fired: set[float] | None = None,
) -> SlaRead:
    """Figures as of ``now`` over the current contract (frozen time survives any change)."""
    contract = load_contracts().get(ticket.contract_id)
    calendar = contract.calendar_obj()
    gtr_s = contract.gtr_s(ticket.criticality)
    log = clock_log(session, ticket) if log is None else log
    f = figures(log, calendar=calendar, now=now)
    due = deadline(log, calendar=calendar, gtr_s=gtr_s, now=now)
    late_s = max(0.0, _penalised_elapsed_s(ticket, log, calendar=calendar, now=now) - gtr_s)
    return SlaRead(
        contract_id=ticket.contract_id,
        calendar=contract.calendar,
        gtr_min=gtr_s / 60,
        clock=log[-1].state.value,
        clock_reason=None if log[-1].state is ClockState.RUNNING else (log[-1].reason or None),
        elapsed_min=round(f.elapsed_s / 60, 1),
        frozen_min=round(f.frozen_s / 60, 1),
        out_of_hours_min=round(f.out_of_hours_s / 60, 1),
        planned_works_min=round(f.planned_works_s / 60, 1),
        deadline=due,
        remaining_min=round((gtr_s - f.elapsed_s) / 60, 1),
        breached=f.elapsed_s > gtr_s,
        escalations_fired=sorted(_fired(session, ticket) if fired is None else fired),
        penalty_eur=contract.penalty.amount(late_s),
        penalty_excluded_from=ticket.penalty_excluded_from,
        criticality_levels=load_contracts().profile_of(ticket.contract_id).names(),
    )


def _penalised_elapsed_s(
    ticket: Ticket, log: list[ClockEvent], *, calendar: Calendar, now: datetime
) -> float:
    """Counted time up to now, or up to the client's refusal of an urgent intervention."""
    cutoff = ticket.penalty_excluded_from
    if cutoff is None or utc(cutoff) >= utc(now):
        return figures(log, calendar=calendar, now=now).elapsed_s
    before = [e for e in log if utc(e.at) <= utc(cutoff)]
    return figures(before, calendar=calendar, now=cutoff).elapsed_s if before else 0.0


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


@dataclass(frozen=True, slots=True)
class OpenDeadline:
    """An open ticket's criticality and GTR deadline (None while its clock is paused short of
    it; in the past once breached)."""

    criticality: str
    deadline: datetime | None


# The open states whose clock can still reach a breach (a restored ticket's clock is stopped).
_CLOCKED_STATES = sorted(
    s.value for s in OPEN_STATES if CLOCK_FOR_STATE[s] is not ClockState.STOPPED
)


def open_deadlines(session: Session, *, now: datetime) -> list[OpenDeadline]:
    """The deadline ``sla_view`` shows for every open ticket whose clock is not stopped, in one
    query (one snapshot: a ticket opened meanwhile cannot lack its log) and no per-ticket query."""
    return list(running_deadlines(session, now=now).values())


def running_deadlines(
    session: Session, *, now: datetime, ticket_ids: Iterable[int] | None = None
) -> dict[int, OpenDeadline]:
    """Ticket id -> its criticality and deadline, for the open tickets whose clock is not
    stopped (of ``ticket_ids`` when given): one query, no per-ticket query."""
    query = (
        select(
            TicketClockEvent.ticket_id,
            Ticket.contract_id,
            Ticket.criticality,
            TicketClockEvent.at,
            TicketClockEvent.state,
        )
        .join(Ticket, Ticket.id == TicketClockEvent.ticket_id)
        .where(Ticket.state.in_(_CLOCKED_STATES))
        .order_by(TicketClockEvent.ticket_id, TicketClockEvent.id)
    )
    if ticket_ids is not None:
        query = query.where(Ticket.id.in_(list(ticket_ids)))
    book = load_contracts()
    calendars: dict[str, Calendar] = {}
    found: dict[int, OpenDeadline] = {}
    for ticket_id, events in groupby(session.execute(query), key=lambda row: row.ticket_id):
        log = list(events)
        first = log[0]
        contract = book.get(first.contract_id)
        calendar = calendars.setdefault(first.contract_id, contract.calendar_obj())
        due = deadline(
            [ClockEvent(row.at, ClockState(row.state)) for row in log],
            calendar=calendar,
            gtr_s=contract.gtr_s(first.criticality),
            now=now,
        )
        found[ticket_id] = OpenDeadline(first.criticality, due)
    return found
