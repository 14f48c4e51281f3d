"""The urgent-requests desk ("guichet unique"): urgent cases such as a hot re-provisioning,
served Monday to Saturday 08:00-17:00 under their own contract (``urgent-desk``: its calendar,
its targets, its penalties) and worked from their own queue, most pressing first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.identity.access import Principal
from collector.sla.contracts import UnknownCriticality, load_contracts
from collector.tickets.declarations import service_for
from collector.tickets.errors import DeclarationRefused
from collector.tickets.lifecycle import OPEN_STATES
from collector.tickets.models import Ticket
from collector.tickets.opening import open_ticket
from collector.tickets.queries import ticket_scope
from collector.tickets.schemas import SlaRead, UrgentRequest
from collector.tickets.sla import sla_views

URGENT_CONTRACT = "urgent-desk"
URGENT_KIND = "urgent_request"
REQUEST_TYPES = {
    "hot_reprovisioning": "hot re-provisioning",
    "urgent_reconnection": "urgent reconnection",
    "urgent_access": "urgent site access",
    "other": "other urgent request",
}


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
        criticality=criticality,
        contract_id=URGENT_CONTRACT,
        declaration=request.model_dump_json(),
        opened_at=now,
        updated_at=now,
    )
    return open_ticket(
        session,
        ticket=ticket,
        actor=principal.user_id,
        detail=f"urgent request ({what}) on {request.hosting_ref}",
        now=now,
    )


def queue(session: Session, *, principal: Principal, now: datetime) -> list[tuple[Ticket, SlaRead]]:
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
