"""Ticket routes: thin — resolve dependencies, call one service function.

Domain errors are answered by ``ERROR_STATUS`` (installed by the app); the routes only add
where to go next when the domain says a step is missing (the domain knows no paths).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from collector.api.caching import conditional
from collector.api.deps import AppClock, DbSession, IfMatchVersion
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.sla.contracts import UnknownCriticality
from collector.tickets import (
    contract_changes,
    declarations,
    escalation,
    interventions,
    queries,
    resupervision,
    transitions,
    updates,
)
from collector.tickets.errors import (
    DeclarationRefused,
    EscalationLimit,
    IllegalTransition,
    InvalidTicketRequest,
    NotAllowed,
    RestorationNoticeRequired,
    ResupervisionRequired,
    TicketConflict,
    TicketNotFound,
    VersionConflict,
)
from collector.tickets.lifecycle import TicketState
from collector.tickets.models import Ticket
from collector.tickets.operations import list_operations
from collector.tickets.queries import TicketSort
from collector.tickets.schemas import (
    ContractChange,
    InterventionCreate,
    OperationRead,
    ProgressUpdate,
    RestorationNotice,
    Resupervision,
    SlaRead,
    TicketDeclaration,
    TicketDetail,
    TicketEscalate,
    TicketPage,
    TicketRead,
    TicketTransition,
)
from collector.tickets.sla import sla_view, sla_views

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

ERROR_STATUS: dict[type[Exception], int] = {
    TicketNotFound: 404,
    NotAllowed: 403,
    VersionConflict: 412,
    TicketConflict: 409,
    EscalationLimit: 409,
    InvalidTicketRequest: 422,
    IllegalTransition: 409,
    UnknownCriticality: 422,
    DeclarationRefused: 422,
}


@contextmanager
def _next_step(ref: str) -> Iterator[None]:
    """Say which route takes the step the domain says is missing."""
    try:
        yield
    except RestorationNoticeRequired as err:
        path = router.url_path_for("restore", ref=ref)
        raise HTTPException(ERROR_STATUS[NotAllowed], f"{err}: POST {path}") from err
    except ResupervisionRequired as err:
        path = router.url_path_for("confirm_resupervision", ref=ref)
        raise HTTPException(ERROR_STATUS[TicketConflict], f"{err} (POST {path})") from err


def ticket_read(ticket: Ticket, *, sla: SlaRead) -> TicketRead:
    """A ticket as the API shows it, with its SLA figures and re-supervision mode."""
    return TicketRead.model_validate(ticket).model_copy(
        update={"sla": sla, "resupervision": resupervision.resupervision_mode(ticket)}
    )


def _read(db: DbSession, ticket: Ticket, clock: AppClock) -> TicketRead:
    return ticket_read(ticket, sla=sla_view(db, ticket, now=clock.now()))


@router.get("", response_model=TicketPage, dependencies=[requires(Action.TICKET_READ)])
def list_tickets(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    state: TicketState | None = None,
    site_id: str | None = None,
    criticality: str | None = None,
    client_id: str | None = None,
    region: str | None = None,
    open_only: bool = False,
    breaching_within_min: Annotated[
        int | None,
        Query(
            ge=0,
            le=525_600,
            description="Only tickets whose clock runs and whose GTR deadline is at most this "
            "many minutes away (already breached ones included).",
        ),
    ] = None,
    sort: Annotated[
        TicketSort,
        Query(
            description="newest, oldest, updated, escalation (highest level first) or breach "
            "(least time left before the GTR deadline first, the most overdue at the top; then "
            "tickets whose clock is paused, with `sla.clock_reason`; then restored; then "
            "closed)."
        ),
    ] = "newest",
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TicketPage:
    """Tickets the caller may see, filtered and sorted, with their SLA figures: the NOC's
    queue is ``?open_only=true&sort=breach`` (what breaches next on top)."""
    page = queries.list_tickets(
        db,
        principal=principal,
        state=state.value if state else None,
        site_id=site_id,
        criticality=criticality,
        client_id=client_id,
        region=region,
        open_only=open_only,
        breaching_within_min=breaching_within_min,
        sort=sort,
        offset=offset,
        limit=limit,
        now=clock.now(),
    )
    views = sla_views(db, page.items, now=clock.now())
    return TicketPage(
        items=[ticket_read(t, sla=views[t.id]) for t in page.items],
        total=page.total,
        offset=offset,
        limit=limit,
    )


@router.get(
    "/{ref}",
    response_model=TicketDetail,
    dependencies=[requires(Action.TICKET_READ)],
    responses={304: {"description": "Inchangé depuis l'ETag donné (If-None-Match) / Not modified"}},
)
def get_ticket(
    ref: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock, request: Request
) -> Response:
    """One ticket with its operations log. Its ETag (``"<version>.<digest>"``) goes back in
    ``If-Match`` to change it, or in ``If-None-Match`` for a 304 while nothing the caller sees
    has changed (``collector/api/caching.py``)."""
    ticket = queries.get_ticket(db, ref=ref, principal=principal)
    ops = list_operations(db, ticket=ticket, principal=principal)
    detail = TicketDetail.model_validate(
        {
            **_read(db, ticket, clock).model_dump(),
            "operations": [OperationRead.model_validate(o) for o in ops],
        }
    )
    return conditional(request, detail, version=ticket.version, principal=principal)


@router.post(
    "/{ref}/transition",
    response_model=TicketRead,
    dependencies=[requires(Action.TICKET_TRANSITION)],
)
def transition(
    ref: str,
    body: TicketTransition,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    response: Response,
    expected: IfMatchVersion,
) -> TicketRead:
    """Move a ticket through its lifecycle (If-Match: the ETag read before; 400 if it is not
    one, 412 if the ticket changed since). Each move is its own permission."""
    with _next_step(ref):
        ticket = transitions.transition(
            db,
            ref=ref,
            to=body.to,
            principal=principal,
            now=clock.now(),
            detail=body.detail,
            criticality=body.criticality,
            expected_version=expected,
        )
    db.commit()
    response.headers["ETag"] = f'"{ticket.version}"'
    return _read(db, ticket, clock)


@router.post(
    "/{ref}/escalate", response_model=TicketRead, dependencies=[requires(Action.TICKET_ESCALATE)]
)
def escalate(
    ref: str,
    body: TicketEscalate,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> TicketRead:
    """Escalate one level by hand (NOC only)."""
    ticket = escalation.escalate(
        db, ref=ref, principal=principal, now=clock.now(), detail=body.detail
    )
    db.commit()
    return _read(db, ticket, clock)


@router.post(
    "", response_model=TicketRead, status_code=201, dependencies=[requires(Action.TICKET_OPEN)]
)
def declare(
    body: TicketDeclaration, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Open a ticket: a client's individual incident (SAV, working hours) or a NOC incident."""
    ticket = declarations.declare(db, declaration=body, principal=principal, now=clock.now())
    db.commit()
    return _read(db, ticket, clock)


@router.post(
    "/{ref}/restore", response_model=TicketRead, dependencies=[requires(Action.TICKET_RESTORE)]
)
def restore(
    ref: str, body: RestorationNotice, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Restore with the restoration notice (the cause alarms must be cleared)."""
    with _next_step(ref):
        ticket = transitions.restore(db, ref=ref, notice=body, principal=principal, now=clock.now())
    db.commit()
    return _read(db, ticket, clock)


@router.post(
    "/{ref}/resupervision",
    response_model=TicketRead,
    dependencies=[requires(Action.TICKET_RESUPERVISE)],
)
def confirm_resupervision(
    ref: str, body: Resupervision, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """The NOC confirms the return to nominal (manual re-supervision)."""
    ticket = resupervision.confirm_resupervision(
        db,
        ref=ref,
        principal=principal,
        now=clock.now(),
        at=body.return_to_nominal_at,
        detail=body.detail,
    )
    db.commit()
    return _read(db, ticket, clock)


@router.post(
    "/{ref}/contract", response_model=TicketRead, dependencies=[requires(Action.TICKET_CONTRACT)]
)
def change_contract(
    ref: str, body: ContractChange, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Put the ticket under another contract; frozen time and the clock log are kept."""
    ticket = contract_changes.change_contract(
        db, ref=ref, contract_id=body.contract_id, principal=principal, now=clock.now()
    )
    db.commit()
    return _read(db, ticket, clock)


@router.post(
    "/{ref}/interventions",
    response_model=TicketRead,
    status_code=201,
    dependencies=[requires(Action.INTERVENTION_ADD)],
)
def add_intervention(
    ref: str, body: InterventionCreate, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Record an intervention (on-site dispatch, fiber maintainer, remote, third party)."""
    interventions.add_intervention(db, ref=ref, body=body, principal=principal, now=clock.now())
    ticket = queries.get_ticket(db, ref=ref, principal=principal)
    db.commit()
    return _read(db, ticket, clock)


@router.post(
    "/{ref}/updates",
    response_model=TicketRead,
    status_code=201,
    dependencies=[requires(Action.TICKET_UPDATE)],
)
def post_update(
    ref: str, body: ProgressUpdate, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """A progress update from the NOC, or a message from the client."""
    ticket = updates.progress_update(
        db,
        ref=ref,
        message=body.message,
        visible_to_client=body.visible_to_client,
        principal=principal,
        now=clock.now(),
    )
    db.commit()
    return _read(db, ticket, clock)
