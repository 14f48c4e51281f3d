"""Site routes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from collector.access import Action
from collector.api.deps import AppClock, CurrentPrincipal, DbSession, requires
from collector.sites import service
from collector.sites.inventory_routes import visible_site
from collector.sites.models import Agent
from collector.sites.schemas import SiteStatus
from collector.telemetry.service import series

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.get("", response_model=list[SiteStatus], dependencies=[requires(Action.INVENTORY_READ)])
def list_sites(
    db: DbSession,
    principal: CurrentPrincipal,
    region: str | None = None,
    kind: Literal["nro", "pm"] | None = None,
    status: Literal["alarm", "unreachable", "ok"] | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100_000,
) -> list[SiteStatus]:
    """Sites the caller may see with their status at a glance, by region then id (the overview
    takes them all; ``offset``/``limit`` page through them)."""
    found = service.site_statuses(db, principal=principal, region=region, kind=kind, status=status)
    return found[offset : offset + limit]


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
    config_error: str | None = None
    clock_skew_s: float | None
    outbox_events_pending: int
    outbox_telemetry_pending: int
    outbox_oldest_unacked_s: float | None
    outbox_thinned_total: int
    outbox_critical: bool
    # Poll health per device from the last heartbeat (stored as JSON on the agent row).
    devices: list[dict[str, Any]] = Field(default_factory=list, validation_alias="devices_json")

    @field_validator("devices", mode="before")
    @classmethod
    def _json(cls, raw: Any) -> Any:
        return json.loads(raw) if isinstance(raw, str) else raw


@router.get(
    "/{site_id}/telemetry",
    response_model=list[SeriesPoint],
    dependencies=[requires(Action.INVENTORY_READ)],
)
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
    visible_site(db, principal, site_id)
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


@router.get(
    "/{site_id}/agent", response_model=AgentRead, dependencies=[requires(Action.INVENTORY_READ)]
)
def site_agent(site_id: str, db: DbSession, principal: CurrentPrincipal) -> AgentRead:
    """The site's agent: reachability, last seen, config hash, outbox depth, device health."""
    visible_site(db, principal, site_id)
    agent = db.scalars(select(Agent).where(Agent.site_id == site_id)).first()
    if agent is None:
        raise HTTPException(status_code=404, detail=f"no agent reports for site {site_id}")
    return AgentRead.model_validate(agent)
