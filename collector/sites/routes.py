"""Site routes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import select

from collector.access import site_scope
from collector.api.deps import AppClock, CurrentPrincipal, DbSession
from collector.sites import service
from collector.sites.models import Agent, Site
from collector.sites.schemas import SiteStatus
from collector.telemetry.service import series

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.get("", response_model=list[SiteStatus])
def list_sites(db: DbSession, principal: CurrentPrincipal) -> list[SiteStatus]:
    """Every site the caller may see, with its status at a glance."""
    return service.site_statuses(db, principal=principal)


class SeriesPoint(BaseModel):
    """One point of a telemetry series."""

    at: datetime
    mean: float
    minimum: float
    maximum: float
    count: int


class AgentRead(BaseModel):
    """An agent as the NOC sees it."""

    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    site_id: str
    reachable: bool
    last_seen: datetime | None
    boot: int
    agent_version: str
    config_hash: str
    clock_skew_s: float | None
    outbox_events_pending: int
    outbox_telemetry_pending: int
    outbox_oldest_unacked_s: float | None
    outbox_thinned_total: int
    outbox_critical: bool
    devices: list[dict[str, Any]]

    @field_validator("devices", mode="before")
    @classmethod
    def _json(cls, raw: Any) -> Any:
        return json.loads(raw) if isinstance(raw, str) else raw


@router.get("/{site_id}/telemetry", response_model=list[SeriesPoint])
def telemetry(
    site_id: str,
    equipment_id: str,
    point: str,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    hours: Annotated[float, Query(gt=0, le=24 * 366)] = 24,
    resolution: Literal["raw", "hourly"] = "raw",
) -> list[SeriesPoint]:
    """A point's series over the last ``hours`` (raw samples or hourly aggregates)."""
    _visible_site(db, principal, site_id)
    now = clock.now()
    points = series(
        db,
        site_id=site_id,
        equipment_id=equipment_id,
        point=point,
        since=now - timedelta(hours=hours),
        until=now,
        resolution=resolution,
    )
    return [SeriesPoint(**vars(p)) for p in points]


@router.get("/{site_id}/agent", response_model=AgentRead)
def site_agent(site_id: str, db: DbSession, principal: CurrentPrincipal) -> AgentRead:
    """The site's agent: reachability, last seen, config hash, outbox depth, device health."""
    _visible_site(db, principal, site_id)
    agent = db.scalars(select(Agent).where(Agent.site_id == site_id)).first()
    if agent is None:
        raise HTTPException(status_code=404, detail=f"no agent reports for site {site_id}")
    return AgentRead.model_validate(agent)


def _visible_site(db: DbSession, principal: CurrentPrincipal, site_id: str) -> None:
    query = select(Site.site_id).where(Site.site_id == site_id)
    scope = site_scope(principal, Site.site_id)
    if scope is not None:
        query = query.where(scope)
    if db.scalars(query).first() is None:
        raise HTTPException(status_code=404, detail=f"site {site_id} not found")
