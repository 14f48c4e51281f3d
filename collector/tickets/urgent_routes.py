"""Routes of the urgent-requests desk: open a request, and the desk's own queue."""

from __future__ import annotations

from fastapi import APIRouter

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.tickets import urgent
from collector.tickets.routes import ticket_read
from collector.tickets.schemas import TicketRead, UrgentRequest
from collector.tickets.sla import sla_view

router = APIRouter(prefix="/api/v1/urgent-requests", tags=["urgent requests"])


@router.post(
    "", response_model=TicketRead, status_code=201, dependencies=[requires(Action.TICKET_OPEN)]
)
def open_request(
    body: UrgentRequest, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Ask the desk for something urgent (hot re-provisioning...): a ticket under the
    ``urgent-desk`` contract, whose clock runs Monday-Saturday 08:00-17:00."""
    ticket = urgent.open_request(db, request=body, principal=principal, now=clock.now())
    db.commit()
    return ticket_read(ticket, sla=sla_view(db, ticket, now=clock.now()))


@router.get("", response_model=list[TicketRead], dependencies=[requires(Action.TICKET_READ)])
def desk_queue(db: DbSession, principal: CurrentPrincipal, clock: AppClock) -> list[TicketRead]:
    """The desk's queue: open urgent requests, the nearest deadline first."""
    return [
        ticket_read(ticket, sla=view)
        for ticket, view in urgent.queue(db, principal=principal, now=clock.now())
    ]
