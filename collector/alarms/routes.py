"""Alarm routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from collector.alarms import service
from collector.alarms.schemas import AlarmPage, AlarmRead
from collector.api.deps import DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])


@router.get("", response_model=AlarmPage, dependencies=[requires(Action.ALARM_READ)])
def list_alarms(
    db: DbSession,
    principal: CurrentPrincipal,
    state: Literal["active", "cleared", "unknown", "open"] | None = None,
    site_id: str | None = None,
    equipment_id: str | None = None,
    alarm_type: str | None = None,
    severity: Literal["critical", "major", "minor", "warning"] | None = None,
    sort: Literal["newest", "oldest", "severity", "last_seen"] = "newest",
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlarmPage:
    """Alarms the caller may see (``state=open``: active or unknown), filtered and sorted."""
    items, total = service.list_alarms(
        db,
        principal=principal,
        state=state,
        site_id=site_id,
        equipment_id=equipment_id,
        alarm_type=alarm_type,
        severity=severity,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    return AlarmPage(
        items=[AlarmRead.model_validate(a) for a in items], total=total, offset=offset, limit=limit
    )
