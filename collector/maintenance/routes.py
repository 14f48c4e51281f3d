"""Planned-works routes."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from collector.api.deps import AppClock, DbSession
from collector.feed import service as feed
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.inventory.models import Site
from collector.maintenance import service
from collector.maintenance.schemas import MaintenanceCreate, MaintenanceRead

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"])


@router.get(
    "", response_model=list[MaintenanceRead], dependencies=[requires(Action.MAINTENANCE_READ)]
)
def list_windows(db: DbSession, principal: CurrentPrincipal) -> list[MaintenanceRead]:
    """Planned works the caller may see."""
    return [
        MaintenanceRead.model_validate(w) for w in service.list_windows(db, principal=principal)
    ]


@router.post(
    "",
    response_model=MaintenanceRead,
    status_code=201,
    dependencies=[requires(Action.MAINTENANCE_PLAN)],
)
def create_window(
    body: MaintenanceCreate, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> MaintenanceRead:
    """Record planned works (NOC); affected clients get the notice on their live stream."""
    if db.get(Site, body.site_id) is None:
        raise HTTPException(status_code=404, detail=f"site {body.site_id} not found")
    request = service.WindowRequest(**{**body.model_dump(), "alarm_types": tuple(body.alarm_types)})
    try:
        window = service.create_window(db, request=request, principal=principal, now=clock.now())
    except service.MaintenanceRefused as err:
        raise HTTPException(status_code=409, detail=str(err)) from err
    feed.publish(
        db,
        kind="maintenance",
        site_id=window.site_id,
        now=clock.now(),
        payload=MaintenanceRead.model_validate(window).model_dump(mode="json"),
    )
    db.commit()
    return MaintenanceRead.model_validate(window)
