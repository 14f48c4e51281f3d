"""Routes of the urgent-requests desk: open a request, and the desk's own queue."""

from __future__ import annotations

from fastapi import APIRouter

from collector.access import Action
from collector.api.deps import AppClock, CurrentPrincipal, DbSession, requires
from collector.tickets import service, urgent
from collector.tickets.schemas import SlaRead, TicketRead
from collector.tickets.urgent import UrgentRequest

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
    return _read(ticket, service.resupervision_mode(ticket), urgent.queue_view(db, ticket, clock))


@router.get("", response_model=list[TicketRead], dependencies=[requires(Action.TICKET_READ)])
def desk_queue(db: DbSession, principal: CurrentPrincipal, clock: AppClock) -> list[TicketRead]:
    """The desk's queue: open urgent requests, the nearest deadline first."""
    return [
        _read(ticket, service.resupervision_mode(ticket), view)
        for ticket, view in urgent.queue(db, principal=principal, now=clock.now())
    ]


def _read(ticket: object, resupervision: str, view: object) -> TicketRead:
    return TicketRead.model_validate(ticket).model_copy(
        update={"sla": SlaRead.model_validate(view), "resupervision": resupervision}
    )
