"""Ticket routes: thin — resolve dependencies, call one service function."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response

from collector.api.deps import AppClock, CurrentPrincipal, DbSession
from collector.tickets import service
from collector.tickets.lifecycle import IllegalTransition
from collector.tickets.schemas import (
    OperationRead,
    TicketDetail,
    TicketPage,
    TicketRead,
    TicketTransition,
)

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


@router.get("", response_model=TicketPage)
def list_tickets(
    db: DbSession,
    principal: CurrentPrincipal,
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
        items=[TicketRead.model_validate(t) for t in page.items],
        total=page.total,
        offset=offset,
        limit=limit,
    )


@router.get("/{ref}", response_model=TicketDetail)
def get_ticket(
    ref: str, db: DbSession, principal: CurrentPrincipal, response: Response
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
            **TicketRead.model_validate(ticket).model_dump(),
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
            expected_version=expected,
        )
    except service.TicketNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except service.VersionConflict as err:
        raise HTTPException(status_code=412, detail=str(err)) from err
    except IllegalTransition as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    db.commit()
    response.headers["ETag"] = f'"{ticket.version}"'
    return TicketRead.model_validate(ticket)
