"""Writing changes (inside the transaction that made them) and reading them back, scoped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, event, insert, or_, select
from sqlalchemy.orm import Session

from collector.alarms.listener import AlarmChange
from collector.alarms.models import Alarm
from collector.feed.models import ChangeEvent
from collector.identity.access import Principal
from collector.identity.scope import client_site_ids
from collector.storage import tx_cache

RETENTION = timedelta(days=1)
_PENDING = "feed.pending"
_INSERT = insert(cast(Table, ChangeEvent.__table__))


def publish(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    site_id: str | None,
    client_id: str | None = None,
) -> None:
    """Record a change; it becomes visible to streams when the transaction commits."""
    # Written in one statement at commit, in order: nothing reads the feed inside the
    # transaction that writes it, and an alarm storm writes tens of thousands of rows.
    pending: list[dict[str, Any]] = tx_cache(session).setdefault(_PENDING, [])
    pending.append(
        {
            "at": now,
            "kind": kind,
            "site_id": site_id,
            "client_id": client_id,
            "payload": json.dumps(payload, default=str),
        }
    )


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending = tx_cache(session).pop(_PENDING, None)
    if pending:
        session.connection().execute(_INSERT, pending)


def read_since(
    session: Session, *, principal: Principal, after_id: int, limit: int = 500
) -> list[ChangeEvent]:
    """Changes after ``after_id`` the caller may see, oldest first."""
    query = select(ChangeEvent).where(ChangeEvent.id > after_id)
    if principal.is_client:
        assert principal.client_id is not None
        query = query.where(
            or_(
                ChangeEvent.client_id == principal.client_id,
                ChangeEvent.site_id.in_(client_site_ids(principal.client_id)),
            )
        )
    return list(session.scalars(query.order_by(ChangeEvent.id).limit(limit)))


def last_id(session: Session) -> int:
    """The newest change id (a new stream starts from here)."""
    row = session.scalars(select(ChangeEvent.id).order_by(ChangeEvent.id.desc()).limit(1)).first()
    return int(row or 0)


def prune(session: Session, *, now: datetime) -> int:
    """Drop changes older than the retention (streams resume within minutes, not days)."""
    result = session.execute(delete(ChangeEvent).where(ChangeEvent.at < now - RETENTION))
    return int(getattr(result, "rowcount", 0) or 0)


class FeedAlarmListener:
    """Puts every alarm change on the feed."""

    def alarm_changed(
        self, session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime
    ) -> None:
        """Record the change with the alarm's current state."""
        acknowledged_at = alarm.acknowledged_at
        publish(
            session,
            kind="alarm",
            site_id=alarm.site_id,
            now=now,
            payload={
                "change": change.value,
                "id": alarm.id,
                "site_id": alarm.site_id,
                "equipment_id": alarm.equipment_id,
                "point": alarm.point,
                "alarm_type": alarm.alarm_type,
                "state": alarm.state,
                "severity": alarm.severity,
                "test": alarm.test,
                # Every operator's screen shows who has taken the alarm in hand.
                "acknowledged_by": alarm.acknowledged_by,
                "acknowledged_at": acknowledged_at.isoformat() if acknowledged_at else None,
                "ack_note": alarm.ack_note,
            },
        )
