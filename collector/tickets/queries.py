"""Reading tickets: one by reference, a filtered and sorted page, what a client may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from collector.identity.access import Principal
from collector.identity.scope import client_site_ids
from collector.inventory.models import Site
from collector.tickets.errors import TicketNotFound
from collector.tickets.lifecycle import OPEN_STATES
from collector.tickets.models import Ticket
from collector.tickets.sla import OpenDeadline, running_deadlines

TicketSort = Literal["newest", "oldest", "updated", "escalation", "breach"]

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
    region: str | None = None,
    open_only: bool = False,
    breaching_within_min: int | None = None,
    sort: TicketSort = "newest",
    offset: int = 0,
    limit: int = 50,
    now: datetime | None = None,
) -> TicketMatches:
    """Tickets the caller may see; ``sort``: newest, oldest, updated (most recently changed
    first), escalation (highest level first) or breach (least time left before the GTR
    deadline first: see ``_breach_order``). ``breaching_within_min``: only tickets whose clock
    runs and whose deadline is at most that far (those already breached included). Both need
    ``now``."""
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
    if region is not None:
        query = query.where(Ticket.site_id.in_(select(Site.site_id).where(Site.region == region)))
    if sort == "breach" or breaching_within_min is not None:
        assert now is not None, "sorting or filtering by the SLA needs now"
        return _by_breach(
            session, query, now=now, within_min=breaching_within_min, sort=sort,
            offset=offset, limit=limit,
        )  # fmt: skip
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(*_ORDER[sort]).offset(offset).limit(limit)))
    return TicketMatches(items=items, total=total)


def _by_breach(
    session: Session,
    query: Select[Ticket],
    *,
    now: datetime,
    within_min: int | None,
    sort: TicketSort,
    offset: int,
    limit: int,
) -> TicketMatches:
    """The page of a query sorted or filtered by time left: the deadlines are computed for the
    matching tickets whose clock runs (one query for all), then filtered and sorted here."""
    rows = list(session.execute(query.with_only_columns(Ticket.id, Ticket.state)).all())
    deadlines = running_deadlines(session, now=now, ticket_ids=[r.id for r in rows])
    if within_min is not None:
        horizon = now + timedelta(minutes=within_min)
        rows = [r for r in rows if _due_by(deadlines.get(r.id), horizon)]
    if sort != "breach":
        kept = select(Ticket).where(Ticket.id.in_([r.id for r in rows]))
        items = list(session.scalars(kept.order_by(*_ORDER[sort]).offset(offset).limit(limit)))
        return TicketMatches(items=items, total=len(rows))
    rows.sort(key=lambda r: _breach_order(r.id, r.state, deadlines.get(r.id)))
    page = [r.id for r in rows[offset : offset + limit]]
    by_id = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(page)))}
    return TicketMatches(items=[by_id[i] for i in page], total=len(rows))


def _due_by(due: OpenDeadline | None, horizon: datetime) -> bool:
    return due is not None and due.deadline is not None and due.deadline <= horizon


def _breach_order(ticket_id: int, state: str, due: OpenDeadline | None) -> tuple[int, float]:
    """Least time left first: a running clock by its deadline (the most overdue first); then
    open tickets whose clock is paused short of it (waiting for the client, planned works);
    then those restored (clock stopped); then closed and cancelled ones, newest first."""
    if due is not None and due.deadline is not None:
        return (0, due.deadline.timestamp())
    if due is not None:
        return (1, ticket_id)
    if state in _OPEN_STATE_NAMES:
        return (2, ticket_id)
    return (3, -ticket_id)


_OPEN_STATE_NAMES = frozenset(s.value for s in OPEN_STATES)


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
