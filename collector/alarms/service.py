"""Reading alarms, scoped to what the caller may see."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from collector.alarms.errors import AlarmNotFound
from collector.alarms.models import Alarm, AlarmHistory
from collector.identity.access import Principal
from collector.identity.scope import site_scope

SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2, "warning": 3}


def list_alarms(
    session: Session,
    *,
    principal: Principal,
    state: str | None = None,
    site_id: str | None = None,
    equipment_id: str | None = None,
    alarm_type: str | None = None,
    severity: str | None = None,
    acknowledged: bool | None = None,
    sort: str = "newest",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Alarm], int]:
    """Alarms the caller may see; ``state='open'`` means active or unknown; ``acknowledged``
    keeps those someone has acknowledged (True) or not (False).

    ``sort``: ``newest`` (default), ``oldest``, ``severity`` (worst first, then newest) or
    ``last_seen`` (most recently seen first).
    """
    query = select(Alarm)
    scope = site_scope(principal, Alarm.site_id)
    if scope is not None:
        query = query.where(scope)
    if state == "open":
        query = query.where(Alarm.state != "cleared")
    elif state is not None:
        query = query.where(Alarm.state == state)
    if site_id is not None:
        query = query.where(Alarm.site_id == site_id)
    if equipment_id is not None:
        query = query.where(Alarm.equipment_id == equipment_id)
    if alarm_type is not None:
        query = query.where(Alarm.alarm_type == alarm_type)
    if severity is not None:
        query = query.where(Alarm.severity == severity)
    if acknowledged is not None:
        query = query.where(
            Alarm.acknowledged_at.is_not(None) if acknowledged else Alarm.acknowledged_at.is_(None)
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rank = case(SEVERITY_RANK, value=Alarm.severity, else_=9)
    order = {
        "newest": (Alarm.id.desc(),),
        "oldest": (Alarm.id.asc(),),
        "severity": (rank.asc(), Alarm.id.desc()),
        "last_seen": (Alarm.last_seen.desc(), Alarm.id.desc()),
    }[sort]
    items = list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))
    return items, total


def get_alarm(
    session: Session, *, alarm_id: int, principal: Principal, for_update: bool = False
) -> Alarm:
    """One alarm, if the caller may see it (another client's is as unknown as a missing one);
    ``for_update`` locks its row until the transaction ends (ingest may be changing it)."""
    query = select(Alarm).where(Alarm.id == alarm_id)
    scope = site_scope(principal, Alarm.site_id)
    if scope is not None:
        query = query.where(scope)
    if for_update:
        query = query.with_for_update(of=Alarm).execution_options(populate_existing=True)
    alarm = session.scalars(query).first()
    if alarm is None:
        raise AlarmNotFound(alarm_id)
    return alarm


def alarm_history(
    session: Session, *, alarm_id: int, principal: Principal, offset: int = 0, limit: int = 50
) -> tuple[list[AlarmHistory], int]:
    """What happened to an alarm the caller may see, oldest first: the edge's transitions,
    the collector's correlation and the operators' acknowledgements (with who and why)."""
    alarm = get_alarm(session, alarm_id=alarm_id, principal=principal)
    query = select(AlarmHistory).where(AlarmHistory.alarm_id == alarm.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(AlarmHistory.id).offset(offset).limit(limit))
    return list(items), total
