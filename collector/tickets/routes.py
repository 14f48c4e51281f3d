"""Ticket routes: thin — resolve dependencies, call one service function."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from collector.api.deps import AppClock, CurrentPrincipal, DbSession
from collector.tickets import declarations, service
from collector.tickets.declarations import InterventionCreate, RestorationNotice, TicketDeclaration
from collector.tickets.lifecycle import IllegalTransition
from collector.tickets.models import Ticket
from collector.tickets.schemas import (
    OperationRead,
    SlaRead,
    TicketDetail,
    TicketEscalate,
    TicketPage,
    TicketRead,
    TicketTransition,
)
from collector.tickets.sla import sla_view

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


def _read(db: DbSession, ticket: Ticket, clock: AppClock) -> TicketRead:
    view = sla_view(db, ticket, now=clock.now())
    return TicketRead.model_validate(ticket).model_copy(
        update={"sla": SlaRead.model_validate(view)}
    )


@router.get("", response_model=TicketPage)
def list_tickets(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    state: str | None = None,
    site_id: str | None = None,
    open_only: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TicketPage:
    """Tickets the caller may see, newest first."""
    page = service.list_tickets(
        db,
        principal=principal,
        state=state,
        site_id=site_id,
        open_only=open_only,
        offset=offset,
        limit=limit,
    )
    return TicketPage(
        items=[_read(db, t, clock) for t in page.items],
        total=page.total,
        offset=offset,
        limit=limit,
    )


@router.get("/{ref}", response_model=TicketDetail)
def get_ticket(
    ref: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock, response: Response
) -> TicketDetail:
    """One ticket with its operations log; the ETag is its version."""
    try:
        ticket = service.get_ticket(db, ref=ref, principal=principal)
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    response.headers["ETag"] = f'"{ticket.version}"'
    ops = service.operations(db, ticket=ticket, principal=principal)
    return TicketDetail.model_validate(
        {
            **_read(db, ticket, clock).model_dump(),
            "operations": [OperationRead.model_validate(o) for o in ops],
        }
    )


@router.post("/{ref}/transition", response_model=TicketRead)
def transition(
    ref: str,
    body: TicketTransition,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> TicketRead:
    """Move a ticket through its lifecycle (If-Match: the ETag read before)."""
    if principal.role.value == "viewer":
        raise HTTPException(status_code=403, detail="read-only users cannot change tickets")
    expected = int(if_match.strip('"')) if if_match and if_match.strip('"').isdigit() else None
    try:
        ticket = service.transition(
            db,
            ref=ref,
            to=body.to,
            principal=principal,
            now=clock.now(),
            detail=body.detail,
            criticality=body.criticality,
            expected_version=expected,
        )
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except service.VersionConflict as err:
        raise HTTPException(status_code=412, detail=str(err)) from err
    except service.NotAllowed as err:
        raise HTTPException(status_code=403, detail=str(err)) from err
    except IllegalTransition as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    db.commit()
    response.headers["ETag"] = f'"{ticket.version}"'
    return _read(db, ticket, clock)


@router.post("/{ref}/escalate", response_model=TicketRead)
def escalate(
    ref: str,
    body: TicketEscalate,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> TicketRead:
    """Escalate one level by hand (NOC only)."""
    if principal.role.value != "noc":
        raise HTTPException(status_code=403, detail="only the NOC escalates tickets")
    try:
        ticket = service.escalate(
            db, ref=ref, principal=principal, now=clock.now(), detail=body.detail
        )
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except service.EscalationLimit as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    db.commit()
    return _read(db, ticket, clock)


class ProgressUpdate(BaseModel):
    """A progress update or a client message."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=8000)
    visible_to_client: bool = True


@router.post("", response_model=TicketRead, status_code=201)
def declare(
    body: TicketDeclaration, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Open a ticket: a client's individual incident (SAV, working hours) or a NOC incident."""
    if principal.role.value not in ("noc", "client"):
        raise HTTPException(status_code=403, detail="only clients and the NOC open tickets")
    try:
        ticket = declarations.declare(db, declaration=body, principal=principal, now=clock.now())
    except declarations.DeclarationRefused as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    db.commit()
    return _read(db, ticket, clock)


@router.post("/{ref}/restore", response_model=TicketRead)
def restore(
    ref: str, body: RestorationNotice, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Restore with the restoration notice (the cause alarms must be cleared)."""
    try:
        ticket = declarations.restore(
            db, ref=ref, notice=body, principal=principal, now=clock.now()
        )
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except service.NotAllowed as err:
        raise HTTPException(
            status_code=403 if principal.is_client else 409, detail=str(err)
        ) from err
    except IllegalTransition as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    db.commit()
    return _read(db, ticket, clock)


@router.post("/{ref}/interventions", response_model=TicketRead, status_code=201)
def add_intervention(
    ref: str, body: InterventionCreate, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """Record an intervention (on-site dispatch, fiber maintainer, remote, third party)."""
    try:
        declarations.add_intervention(db, ref=ref, body=body, principal=principal, now=clock.now())
        ticket = service.get_ticket(db, ref=ref, principal=principal)
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except service.NotAllowed as err:
        raise HTTPException(status_code=403, detail=str(err)) from err
    db.commit()
    return _read(db, ticket, clock)


@router.post("/{ref}/updates", response_model=TicketRead, status_code=201)
def post_update(
    ref: str, body: ProgressUpdate, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> TicketRead:
    """A progress update from the NOC, or a message from the client."""
    try:
        ticket = declarations.progress_update(
            db,
            ref=ref,
            message=body.message,
            visible_to_client=body.visible_to_client,
            principal=principal,
            now=clock.now(),
        )
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except service.NotAllowed as err:
        raise HTTPException(status_code=403, detail=str(err)) from err
    db.commit()
    return _read(db, ticket, clock)
