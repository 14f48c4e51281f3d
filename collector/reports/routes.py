"""Report routes: JSON, CSV or a readable page; clients get their own report only."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import AwareDatetime

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.identity.scope import visible_site
from collector.reports import operations, service

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get("/monthly", response_model=None, dependencies=[requires(Action.REPORT_MONTHLY)])
def monthly(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
    client_id: str | None = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Any:
    """The monthly QoS/SLA report of a client (clients: their own, whatever they ask)."""
    if principal.is_client:
        client_id = principal.client_id
    elif client_id is None:
        raise HTTPException(status_code=422, detail="client_id is required")
    assert client_id is not None
    try:
        report = service.monthly_report(db, client_id=client_id, month=month, now=clock.now())
    except LookupError as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    if format == "csv":
        return PlainTextResponse(
            service.to_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="sla-{client_id}-{month}.csv"'},
        )
    if format == "html":
        return HTMLResponse(service.to_html(report))
    return asdict(report)


def _period(
    clock: AppClock, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    end = until or clock.now()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise HTTPException(status_code=422, detail="since must be before until")
    return start, end


@router.get("/tickets-summary", dependencies=[requires(Action.REPORT_OPERATIONS)])
def tickets_summary(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> dict[str, Any]:
    """Tickets opened in the period (default: the last 30 days) by state, criticality and kind,
    with the mean time to restore and the SLA breaches."""
    start, end = _period(clock, since, until)
    return asdict(operations.ticket_summary(db, principal=principal, since=start, until=end))


@router.get("/malfunctions", dependencies=[requires(Action.REPORT_OPERATIONS)])
def malfunctions(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    top: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    """Synthesis of malfunctions: alarms of the period by type and by site."""
    start, end = _period(clock, since, until)
    report = operations.malfunctions(db, principal=principal, since=start, until=end, top=top)
    return asdict(report)


@router.get(
    "/equipment/{site_id}/{equipment_id}", dependencies=[requires(Action.REPORT_OPERATIONS)]
)
def equipment(
    site_id: str,
    equipment_id: str,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> dict[str, Any]:
    """One equipment: open alarms, alarms of the period, poll status, measured performance."""
    visible_site(db, principal=principal, site_id=site_id)
    start, end = _period(clock, since, until)
    report = operations.equipment_report(
        db, site_id=site_id, equipment_id=equipment_id, since=start, until=end
    )
    return asdict(report)
