"""Inspection routes: start, read, complete, and the sites due or overdue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, field_validator

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.identity.scope import client_site_ids, visible_site
from collector.inspections import service
from collector.inspections.models import Inspection

# A row id: SQLite and PostgreSQL hold 64-bit integers; a larger one is no inspection at all.
InspectionId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])

# The service's errors, answered with their own messages (``install_domain_errors``).
ERROR_STATUS: dict[type[Exception], int] = {
    service.InspectionNotFound: 404,
    service.InspectionRefused: 409,
    service.InspectionForbidden: 403,
}


class InspectionStart(BaseModel):
    """Start an inspection of a site."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=128)
    duration_min: int = Field(default=60, ge=1, le=720)
    technician: str = Field(default="", max_length=128)


class InspectionComplete(BaseModel):
    """The technician's closing notes."""

    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=8000)


class ItemResult(BaseModel):
    """One checklist item."""

    alarm_types: list[str] = []
    triggered_at: datetime | None = None
    restored_at: datetime | None = None
    done: bool = False


class InspectionRead(BaseModel):
    """An inspection and its report."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: str
    technician: str
    started_at: datetime
    ends_at: datetime
    status: str
    completed_at: datetime | None
    notes: str
    items: dict[str, ItemResult] = {}

    @field_validator("items", mode="before")
    @classmethod
    def _parse(cls, raw: Any) -> Any:
        return raw or {}


class SiteDueRead(BaseModel):
    """A site due (or overdue) for its yearly inspection."""

    site_id: str
    kind: str
    region: str
    last_complete_at: datetime | None
    overdue: bool


def _read(inspection: Inspection) -> InspectionRead:
    results: dict[str, dict[str, Any]] = json.loads(inspection.results)
    done = service.items_done(inspection)
    items = {k: ItemResult(**v, done=done.get(k, False)) for k, v in results.items()}
    return InspectionRead.model_validate(inspection).model_copy(update={"items": items})


@router.post(
    "",
    response_model=InspectionRead,
    status_code=201,
    dependencies=[requires(Action.INSPECTION_START)],
)
def start(
    body: InspectionStart, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> InspectionRead:
    """Start an inspection (technicians, NOC): triggers at the site are test results."""
    inspection = service.start(
        db,
        site_id=body.site_id,
        duration=timedelta(minutes=body.duration_min),
        technician=body.technician,
        principal=principal,
        now=clock.now(),
    )
    db.commit()
    return _read(inspection)


@router.get(
    "/due", response_model=list[SiteDueRead], dependencies=[requires(Action.INSPECTION_READ)]
)
def due(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    within_days: Annotated[int, Query(ge=0, le=3660)] = 30,
) -> list[SiteDueRead]:
    """Sites with no complete inspection in the last year (overdue) or due within the days."""
    allowed = _client_sites(db, principal)
    return [
        SiteDueRead(**vars(d))
        for d in service.due(db, now=clock.now(), within_days=within_days)
        if allowed is None or d.site_id in allowed
    ]


@router.get(
    "", response_model=list[InspectionRead], dependencies=[requires(Action.INSPECTION_READ)]
)
def list_inspections(
    db: DbSession, principal: CurrentPrincipal, site_id: str | None = None
) -> list[InspectionRead]:
    """Inspections, newest first (clients: at their sites)."""
    if site_id is not None:
        visible_site(db, principal=principal, site_id=site_id)
    allowed = _client_sites(db, principal)
    found = service.list_inspections(db, site_id=site_id)
    return [_read(i) for i in found if allowed is None or i.site_id in allowed]


@router.get(
    "/{inspection_id}",
    response_model=InspectionRead,
    dependencies=[requires(Action.INSPECTION_READ)],
)
def get_inspection(
    inspection_id: InspectionId, db: DbSession, principal: CurrentPrincipal
) -> InspectionRead:
    """One inspection with its checklist results."""
    inspection = service.get(db, inspection_id=inspection_id)
    visible_site(db, principal=principal, site_id=inspection.site_id)
    return _read(inspection)


@router.post(
    "/{inspection_id}/complete",
    response_model=InspectionRead,
    dependencies=[requires(Action.INSPECTION_COMPLETE)],
)
def complete(
    inspection_id: InspectionId,
    body: InspectionComplete,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> InspectionRead:
    """Store the inspection report (technician, date, results per item, notes)."""
    inspection = service.complete(
        db, inspection_id=inspection_id, notes=body.notes, principal=principal, now=clock.now()
    )
    db.commit()
    return _read(inspection)


def _client_sites(db: DbSession, principal: CurrentPrincipal) -> set[str] | None:
    """The sites a client may see; None for everyone else (no restriction)."""
    if not principal.is_client or principal.client_id is None:
        return set() if principal.is_client else None
    return set(db.scalars(client_site_ids(principal.client_id)))
