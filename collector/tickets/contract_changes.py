"""What a ticket is held to: another contract, or lateness excluded from penalties."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from collector.identity.access import Action, Principal, require
from collector.sla.contracts import load_contracts
from collector.tickets.errors import InvalidTicketRequest, TicketConflict
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.queries import get_ticket
from collector.tickets.sla import reschedule


def change_contract(
    session: Session, *, ref: str, contract_id: str, principal: Principal, now: datetime
) -> Ticket:
    """Put a ticket under another contract; its criticality keeps its meaning on the new
    profile, and the clock log is untouched, so frozen time survives the change."""
    require(principal, Action.TICKET_CONTRACT)
    book = load_contracts()
    try:
        book.get(contract_id)
    except KeyError as err:
        raise InvalidTicketRequest(err.args[0]) from err
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if TicketState(ticket.state) not in OPEN_STATES:
        raise TicketConflict(f"ticket {ref} is {ticket.state}: its contract can no longer change")
    before = ticket.contract_id
    if before == contract_id:
        return ticket
    level = book.convert_level(ticket.criticality, from_contract=before, to_contract=contract_id)
    detail = f"contract {before} -> {contract_id}"
    if level != ticket.criticality:
        detail += f"; criticality {ticket.criticality} -> {level}"
    ticket.contract_id = contract_id
    ticket.criticality = level
    log_operation(
        session,
        ticket=ticket,
        actor=principal.user_id,
        action="contract",
        now=now,
        detail=detail,
        before=before,
        after=contract_id,
        visible_to_client=True,
    )
    reschedule(session, ticket, now=now)
    return ticket


def exclude_from_penalties(
    session: Session, *, site_id: str, client_id: str | None, reason: str, now: datetime
) -> list[Ticket]:
    """The client refused an urgent intervention: open tickets at the site (the client's, when
    the works concern one client) are not penalised for lateness from now on."""
    query = select(Ticket).where(
        Ticket.site_id == site_id,
        Ticket.state.in_([s.value for s in OPEN_STATES]),
        Ticket.penalty_excluded_from.is_(None),
    )
    if client_id is not None:
        query = query.where(or_(Ticket.client_id == client_id, Ticket.client_id.is_(None)))
    tickets = list(session.scalars(query))
    for ticket in tickets:
        ticket.penalty_excluded_from = now
        ticket.penalty_excluded_reason = reason
        log_operation(
            session,
            ticket=ticket,
            actor=SYSTEM_ACTOR,
            action="penalty_excluded",
            now=now,
            detail=f"{reason}: lateness from now on is excluded from penalties",
        )
    return tickets
