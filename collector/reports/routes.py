"""Report routes: JSON, CSV or a readable page; clients get their own report only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from collector.api.deps import AppClock, CurrentPrincipal, DbSession
from collector.reports import service

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get("/monthly", response_model=None)
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
