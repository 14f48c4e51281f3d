"""Alarm routes (thin): list, history, acknowledge and withdraw an acknowledgement."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from collector.alarms import acknowledgement, service
from collector.alarms.engine import AlarmEngine
from collector.alarms.errors import AcknowledgementConflict, AlarmNotFound
from collector.alarms.schemas import (
    AlarmAcknowledge,
    AlarmHistoryPage,
    AlarmHistoryRead,
    AlarmPage,
    AlarmRead,
    AlarmUnacknowledge,
)
from collector.api.deps import MAX_ID, AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

ERROR_STATUS: dict[type[Exception], int] = {
    AlarmNotFound: 404,
    AcknowledgementConflict: 409,
}


def get_alarm_engine(request: Request) -> AlarmEngine:
    """The collector's alarm engine (its listeners: the live feed above all), from the app."""
    engine: AlarmEngine = request.app.state.alarm_engine
    return engine


Engine = Annotated[AlarmEngine, Depends(get_alarm_engine)]
AlarmId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=AlarmPage, dependencies=[requires(Action.ALARM_READ)])
def list_alarms(
    db: DbSession,
    principal: CurrentPrincipal,
    state: Literal["active", "cleared", "unknown", "open"] | None = None,
    site_id: str | None = None,
    equipment_id: str | None = None,
    alarm_type: str | None = None,
    severity: Literal["critical", "major", "minor", "warning"] | None = None,
    acknowledged: bool | None = None,
    sort: Literal["newest", "oldest", "severity", "last_seen"] = "newest",
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlarmPage:
    """Alarms the caller may see (``state=open``: active or unknown; ``acknowledged=false``:
    nobody has taken them in hand), filtered and sorted."""
    items, total = service.list_alarms(
        db,
        principal=principal,
        state=state,
        site_id=site_id,
        equipment_id=equipment_id,
        alarm_type=alarm_type,
        severity=severity,
        acknowledged=acknowledged,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    return AlarmPage(
        items=[AlarmRead.model_validate(a) for a in items], total=total, offset=offset, limit=limit
    )


@router.get(
    "/{alarm_id}/history",
    response_model=AlarmHistoryPage,
    dependencies=[requires(Action.ALARM_READ)],
)
def alarm_history(
    alarm_id: AlarmId,
    db: DbSession,
    principal: CurrentPrincipal,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlarmHistoryPage:
    """An alarm's history, oldest first: transitions, correlation, acknowledgements."""
    items, total = service.alarm_history(
        db, alarm_id=alarm_id, principal=principal, offset=offset, limit=limit
    )
    return AlarmHistoryPage(
        items=[AlarmHistoryRead.model_validate(h) for h in items],
        total=total,
        offset=offset,
        limit=limit,
    )


@router.post(
    "/{alarm_id}/acknowledge",
    response_model=AlarmRead,
    dependencies=[requires(Action.ALARM_ACKNOWLEDGE)],
)
def acknowledge(
    alarm_id: AlarmId,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    engine: Engine,
    body: AlarmAcknowledge | None = None,
) -> AlarmRead:
    """Acknowledge an alarm in the caller's name, with an optional note (409: already done)."""
    alarm = acknowledgement.acknowledge(
        db,
        alarm_id=alarm_id,
        principal=principal,
        note=body.note if body is not None else None,
        engine=engine,
        now=clock.now(),
    )
    db.commit()
    return AlarmRead.model_validate(alarm)


@router.post(
    "/{alarm_id}/unacknowledge",
    response_model=AlarmRead,
    dependencies=[requires(Action.ALARM_UNACKNOWLEDGE)],
)
def unacknowledge(
    alarm_id: AlarmId,
    body: AlarmUnacknowledge,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    engine: Engine,
) -> AlarmRead:
    """Withdraw an alarm's acknowledgement, with a reason (409: it is not acknowledged)."""
    alarm = acknowledgement.unacknowledge(
        db,
        alarm_id=alarm_id,
        principal=principal,
        reason=body.reason,
        engine=engine,
        now=clock.now(),
    )
    db.commit()
    return AlarmRead.model_validate(alarm)
