"""The urgent-requests desk ("guichet unique"): urgent cases such as a hot re-provisioning,
served Monday to Saturday 08:00-17:00 under their own contract (``urgent-desk``: its calendar,
its targets, its penalties) and worked from their own queue, most pressing first."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from clocks import Clock
from collector.access import Principal
from collector.sla.contracts import UnknownCriticality, load_contracts
from collector.tickets.declarations import DeclarationRefused, TechnicalContact, service_for
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket
from collector.tickets.service import add_ticket, record_opened, ticket_scope
from collector.tickets.sla import SlaView, sla_view, sla_views

URGENT_CONTRACT = "urgent-desk"
URGENT_KIND = "urgent_request"
REQUEST_TYPES = {
    "hot_reprovisioning": "hot re-provisioning",
    "urgent_reconnection": "urgent reconnection",
    "urgent_access": "urgent site access",
    "other": "other urgent request",
}


class UrgentRequest(BaseModel):
    """What a client (or the NOC on its behalf) asks the desk for."""

    model_config = ConfigDict(extra="forbid")

    hosting_ref: str = Field(pattern=r"^HEB[0-9]{5}$")
    request_type: Literal["hot_reprovisioning", "urgent_reconnection", "urgent_access", "other"]
    description: str = Field(min_length=1, max_length=8000)
    technical_contact: TechnicalContact
    client_ref: str | None = Field(default=None, max_length=64)
    # On the desk contract's scale; default: its most urgent level (the 1-hour target).
    criticality: str | None = None


def open_request(
    session: Session, *, request: UrgentRequest, principal: Principal, now: datetime
) -> Ticket:
    """Open an urgent request; its clock runs only while the desk is open."""
    service = service_for(session, hosting_ref=request.hosting_ref, principal=principal)
    book = load_contracts()
    criticality = request.criticality or book.profile_of(URGENT_CONTRACT).from_default("critical")
    try:
        book.check_level(URGENT_CONTRACT, criticality)
    except UnknownCriticality as err:
        raise DeclarationRefused(f"criticality: {err}") from err
    what = REQUEST_TYPES[request.request_type]
    ticket = Ticket(
        source="client" if principal.is_client else "noc",
        kind=URGENT_KIND,
        site_id=service.site_id,
        client_id=service.client_id,
        client_ref=request.client_ref,
        hosting_ref=request.hosting_ref,
        title=f"Urgent request {request.hosting_ref}: {what}",
        description=request.description,
        state=TicketState.OPENED.value,
        criticality=criticality,
        contract_id=URGENT_CONTRACT,
        declaration=request.model_dump_json(),
        opened_at=now,
        updated_at=now,
    )
    add_ticket(session, ticket, now=now)
    record_opened(
        session,
        ticket,
        actor=principal.user_id,
        detail=f"urgent request ({what}) on {request.hosting_ref}",
        now=now,
    )
    return ticket


def queue(session: Session, *, principal: Principal, now: datetime) -> list[tuple[Ticket, SlaView]]:
    """Open urgent requests the caller may see, the nearest deadline first."""
    query = select(Ticket).where(
        Ticket.kind == URGENT_KIND, Ticket.state.in_([s.value for s in OPEN_STATES])
    )
    if principal.is_client:
        query = query.where(ticket_scope(principal))
    tickets = list(session.scalars(query.order_by(Ticket.id)))
    views = sla_views(session, tickets, now=now)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(
        ((t, views[t.id]) for t in tickets), key=lambda tv: (tv[1].deadline or far, tv[0].id)
    )


def queue_view(session: Session, ticket: Ticket, clock: Clock) -> SlaView:
    """The SLA figures of one request, as the queue shows them."""
    return sla_view(session, ticket, now=clock.now())
