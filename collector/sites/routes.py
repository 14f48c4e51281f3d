"""Site routes, every ``/api/v1/sites...`` one: the overview, a site's page, its equipment,
agent and telemetry; editing sites and equipment (NOC). Thin: each calls one service."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi import Path as PathParam

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.identity.scope import visible_site
from collector.inventory.errors import InventoryConflict, InventoryInvalid, InventoryNotFound
from collector.inventory.files import IDENT_PATTERN, EquipmentDetails, EquipmentEntry, SiteEntry
from collector.sites import editing, service
from collector.sites.schemas import (
    AgentRead,
    EquipmentRead,
    SeriesPoint,
    SiteDetail,
    SitePatch,
    SiteStatus,
)
from collector.telemetry.service import series

router = APIRouter(prefix="/api/v1/sites")

# The inventory's errors, answered with their own messages (``install_domain_errors``).
ERROR_STATUS: dict[type[Exception], int] = {
    InventoryNotFound: 404,
    InventoryConflict: 409,
    InventoryInvalid: 422,
}
# Tags in the API's description: the overview's reads, and the inventory's pages and edits.
_SITES: list[str | Enum] = ["sites"]
_INVENTORY: list[str | Enum] = ["inventory"]


@router.get(
    "",
    response_model=list[SiteStatus],
    tags=_SITES,
    dependencies=[requires(Action.INVENTORY_READ)],
)
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


@router.get(
    "/{site_id}",
    response_model=SiteDetail,
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_READ)],
)
def get_site(site_id: str, db: DbSession, principal: CurrentPrincipal) -> SiteDetail:
    """A site with its equipment (health, open alarms), agent and the services there."""
    return service.site_detail(db, principal=principal, site_id=site_id)


@router.post(
    "",
    response_model=SiteDetail,
    status_code=201,
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def create_site(
    body: SiteEntry, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> SiteDetail:
    """Add a site (NOC)."""
    site = editing.create_site(db, entry=body, principal=principal, now=clock.now())
    db.commit()
    return service.site_detail(db, principal=principal, site_id=site.site_id)


@router.patch(
    "/{site_id}",
    response_model=SiteDetail,
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def update_site(
    site_id: str, body: SitePatch, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> SiteDetail:
    """Change a site's details (NOC)."""
    editing.update_site(
        db,
        site_id=site_id,
        changes=body.model_dump(exclude_unset=True),
        principal=principal,
        now=clock.now(),
    )
    db.commit()
    return service.site_detail(db, principal=principal, site_id=site_id)


@router.delete(
    "/{site_id}",
    status_code=204,
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def delete_site(
    site_id: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> Response:
    """Remove a site with nothing live left (NOC)."""
    editing.delete_site(db, site_id=site_id, principal=principal, now=clock.now())
    db.commit()
    return Response(status_code=204)


@router.get(
    "/{site_id}/equipment",
    response_model=list[EquipmentRead],
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_READ)],
)
def list_equipment(site_id: str, db: DbSession, principal: CurrentPrincipal) -> list[EquipmentRead]:
    """A site's equipment with its poll health and open alarms."""
    visible_site(db, principal=principal, site_id=site_id)
    return service.equipment_of(db, site_id=site_id)


@router.put(
    "/{site_id}/equipment/{equipment_id}",
    response_model=EquipmentRead,
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def put_equipment(
    site_id: str,
    equipment_id: Annotated[str, PathParam(pattern=IDENT_PATTERN)],
    body: EquipmentDetails,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> EquipmentRead:
    """Declare or describe an equipment (NOC)."""
    entry = EquipmentEntry(equipment_id=equipment_id, **body.model_dump())
    item = editing.upsert_equipment(
        db, site_id=site_id, entry=entry, principal=principal, now=clock.now()
    )
    db.commit()
    return EquipmentRead.model_validate(item)


@router.delete(
    "/{site_id}/equipment/{equipment_id}",
    status_code=204,
    tags=_INVENTORY,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def delete_equipment(
    site_id: str, equipment_id: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> Response:
    """Remove an equipment without open alarms (NOC)."""
    editing.delete_equipment(
        db, site_id=site_id, equipment_id=equipment_id, principal=principal, now=clock.now()
    )
    db.commit()
    return Response(status_code=204)


@router.get(
    "/{site_id}/telemetry",
    response_model=list[SeriesPoint],
    tags=_SITES,
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
    visible_site(db, principal=principal, site_id=site_id)
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
    "/{site_id}/agent",
    response_model=AgentRead,
    tags=_SITES,
    dependencies=[requires(Action.INVENTORY_READ)],
)
def site_agent(site_id: str, db: DbSession, principal: CurrentPrincipal) -> AgentRead:
    """The site's agent: reachability, last seen, config hash, outbox depth, device health."""
    visible_site(db, principal=principal, site_id=site_id)
    agent = service.site_agent(db, site_id=site_id)
    if agent is None:
        raise HTTPException(status_code=404, detail=f"no agent reports for site {site_id}")
    return AgentRead.model_validate(agent)
