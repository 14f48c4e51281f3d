"""Reading tickets: one by reference, a filtered and sorted page, what a client may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from collector.identity.access import Principal
from collector.identity.scope import client_site_ids
from collector.tickets.errors import TicketNotFound
from collector.tickets.lifecycle import OPEN_STATES
from collector.tickets.models import Ticket

TicketSort = Literal["newest", "oldest", "updated", "escalation"]

_ORDER = {
    "newest": (Ticket.id.desc(),),
    "oldest": (Ticket.id.asc(),),
    "updated": (Ticket.updated_at.desc(), Ticket.id.desc()),
    "escalation": (Ticket.escalation_level.desc(), Ticket.id.desc()),
}


@dataclass(frozen=True)
class TicketMatches:
    """One page of the tickets a query matches, and how many it matches in all."""

    items: list[Ticket]
    total: int


def ticket_scope(principal: Principal) -> ColumnElement[bool]:
    """The tickets a client may see: its own, and those at sites where it has a service."""
    assert principal.client_id is not None
    return or_(
        Ticket.client_id == principal.client_id,
        Ticket.site_id.in_(client_site_ids(principal.client_id)),
    )


def list_tickets(
    session: Session,
    *,
    principal: Principal,
    state: str | None = None,
    site_id: str | None = None,
    criticality: str | None = None,
    client_id: str | None = None,
    open_only: bool = False,
    sort: TicketSort = "newest",
    offset: int = 0,
    limit: int = 50,
) -> TicketMatches:
    """Tickets the caller may see; ``sort``: newest, oldest, updated (most recently changed
    first) or escalation (highest level first)."""
    query = select(Ticket)
    if principal.is_client:
        query = query.where(ticket_scope(principal))
    if state is not None:
        query = query.where(Ticket.state == state)
    if open_only:
        query = query.where(Ticket.state.in_([s.value for s in OPEN_STATES]))
    if site_id is not None:
        query = query.where(Ticket.site_id == site_id)
    if criticality is not None:
        query = query.where(Ticket.criticality == criticality)
    if client_id is not None:
        query = query.where(Ticket.client_id == client_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(*_ORDER[sort]).offset(offset).limit(limit)))
    return TicketMatches(items=items, total=total)


def get_ticket(
    session: Session, *, ref: str, principal: Principal, for_update: bool = False
) -> Ticket:
    """One ticket by reference, if the caller may see it; ``for_update`` locks its row until
    the transaction ends (every change: another instance, or ingest, may be changing it)."""
    query = select(Ticket).where(Ticket.ref == ref)
    if principal.is_client:
        query = query.where(ticket_scope(principal))
    if for_update:
        query = query.with_for_update(of=Ticket).execution_options(populate_existing=True)
    ticket = session.scalars(query).first()
    if ticket is None:
        raise TicketNotFound(f"ticket {ref} not found")
    return ticket
