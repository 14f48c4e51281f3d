"""Planned works: validation of the operator's rules, scope checks, window start and end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.identity.access import Principal
from collector.identity.scope import site_scope
from collector.maintenance.models import MaintenanceWindow
from collector.sla.calendar import WorkingHours
from collector.tickets import contract_changes
from collector.tickets.models import TicketIntervention

NOTICE_WORKING_DAYS = 10
# Fire is never muted by planned works.
NEVER_MUTED = frozenset({"fire"})
# What a technician's authorised visit produces and must not be taken for an intrusion.
ACCESS_ALARMS = frozenset({"door_open", "intrusion"})


class MaintenanceRefused(ValueError):
    """A window that breaks the planned-works rules; the message says which and why."""


@dataclass(frozen=True)
class WindowRequest:
    """What the NOC asks for."""

    site_id: str
    starts_at: datetime
    ends_at: datetime
    category: str
    hours: str
    equipment_id: str | None = None
    alarm_types: tuple[str, ...] = ()
    client_id: str | None = None
    client_agreement: str | None = None
    description: str = ""


def working_days_between(now: datetime, start: datetime) -> int:
    """Full working days (Paris, French holidays) strictly between today and the start day."""
    calendar = WorkingHours()
    tz = ZoneInfo(calendar.timezone)
    day = now.astimezone(tz).date() + timedelta(days=1)
    last = start.astimezone(tz).date()
    count = 0
    while day < last:
        count += calendar.is_open_day(day)
        day += timedelta(days=1)
    return count


def create_window(
    session: Session, *, request: WindowRequest, principal: Principal, now: datetime
) -> MaintenanceWindow:
    """Validate and record a window; refusals say which rule and by how much."""
    if request.ends_at <= request.starts_at:
        raise MaintenanceRefused("ends_at must be after starts_at")
    if request.category == "scheduled":
        notice = working_days_between(now, request.starts_at)
        if notice < NOTICE_WORKING_DAYS:
            raise MaintenanceRefused(
                f"scheduled works need {NOTICE_WORKING_DAYS} working days' notice;"
                f" only {notice} before {request.starts_at.date()}"
            )
    if request.category == "urgent" and request.client_agreement not in ("accepted", "refused"):
        raise MaintenanceRefused(
            "urgent corrective works need the client's recorded agreement: accepted or refused"
        )
    window = MaintenanceWindow(
        site_id=request.site_id,
        equipment_id=request.equipment_id,
        alarm_types=",".join(request.alarm_types),
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        category=request.category,
        hours=request.hours,
        client_id=request.client_id,
        client_agreement=request.client_agreement,
        # Works outside business hours (HNO) on one client's service are quoted to that client.
        quote_required=request.hours == "HNO" and request.client_id is not None,
        description=request.description,
        created_by=principal.user_id,
        created_at=now,
    )
    session.add(window)
    session.flush()
    if request.category == "urgent" and request.client_agreement == "refused":
        # Recorded, and the delay it causes is not the operator's: no penalty for it.
        contract_changes.exclude_from_penalties(
            session,
            site_id=request.site_id,
            client_id=request.client_id,
            reason=f"the client refused urgent corrective works (planned works #{window.id})",
            now=now,
        )
    return window


def active_window(
    session: Session, *, site_id: str, equipment_id: str, alarm_type: str, at: datetime
) -> MaintenanceWindow | None:
    """The window covering an alarm at ``at``, if any (fire is never covered)."""
    if alarm_type in NEVER_MUTED:
        return None
    for window in session.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.site_id == site_id,
            MaintenanceWindow.starts_at <= at,
            MaintenanceWindow.ends_at > at,
            MaintenanceWindow.takes_place(),
        )
    ):
        if window.covers(equipment_id=equipment_id, alarm_type=alarm_type):
            return window
    return None


def list_windows(session: Session, *, principal: Principal) -> list[MaintenanceWindow]:
    """Windows the caller may see (clients: at their sites)."""
    query = select(MaintenanceWindow)
    scope = site_scope(principal, MaintenanceWindow.site_id)
    if scope is not None:
        query = query.where(scope)
    return list(session.scalars(query.order_by(MaintenanceWindow.starts_at.desc())))


def authorised_access(session: Session, *, site_id: str, at: datetime) -> bool:
    """True while a ticket's on-site dispatch slot covers ``at`` at this site."""
    return (
        session.scalars(
            select(TicketIntervention.id).where(
                TicketIntervention.site_id == site_id,
                TicketIntervention.kind == "onsite_dispatch",
                TicketIntervention.slot_start <= at,
                TicketIntervention.slot_end > at,
            )
        ).first()
        is not None
    )
