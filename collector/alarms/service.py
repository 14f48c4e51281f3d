"""Reading alarms, scoped to what the caller may see."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
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
    sort: str = "newest",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Alarm], int]:
    """Alarms the caller may see; ``state='open'`` means active or unknown.

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
