"""Who of a client's escalation matrix is on duty now: the contacts of a level whose hours
(24/7, working hours, the urgent desk's) are open. The matrix itself is edited with the sites'
inventory (``collector.sites.escalation``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.inventory.models import EscalationContact
from collector.sla.calendar import calendar_from_spec


def on_duty(
    session: Session, *, client_id: str, level: int, now: datetime
) -> list[EscalationContact]:
    """The contacts of a level whose hours are open at ``now``."""
    rows = session.scalars(
        select(EscalationContact)
        .where(EscalationContact.client_id == client_id, EscalationContact.level == level)
        .order_by(EscalationContact.id)
    )
    return [r for r in rows if _open(r.hours, now)]


def _open(hours: str, now: datetime) -> bool:
    return calendar_from_spec(hours).working_seconds(now, now + timedelta(seconds=1)) > 0
