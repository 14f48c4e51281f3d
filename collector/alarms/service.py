"""Reading alarms, scoped to what the caller may see."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.access import Principal, site_scope
from collector.alarms.models import Alarm

SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2, "warning": 3}


def list_alarms(
    session: Session,
    *,
    principal: Principal,
    state: str | None = None,
    site_id: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Alarm], int]:
    """Alarms newest first; ``state='open'`` means active or unknown."""
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
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Alarm.id.desc()).offset(offset).limit(limit)))
    return items, total
