"""Inspections: start, record what each checklist item saw, complete, and find the sites due.

During an inspection, alarms raised at the site are test results (flagged ``test``, no ticket,
shown live to the NOC as tests). A fire trigger not back to normal within the checklist's time
limit, and any test alarm still active when the inspection ends, becomes a real incident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.alarms.listener import AlarmChange
from collector.alarms.models import Alarm
from collector.datadir import INSPECTION_CHECKLIST, data_path, load_yaml
from collector.identity.access import Action, Principal, require
from collector.inspections.models import Inspection
from collector.inventory.models import Site

MAX_DURATION = timedelta(hours=12)


class Checklist(BaseModel):
    """The checklist, as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: dict[str, list[str]] = Field(min_length=1)
    fire_limit_s: float = Field(default=300, gt=0)
    due_every_days: int = Field(default=365, gt=0)

    def items_for(self, alarm_type: str) -> list[str]:
        """The checklist items an alarm type exercises."""
        return [item for item, types in self.items.items() if alarm_type in types]


def load_checklist(path: Path | None = None) -> Checklist:
    """The checklist of the data directory in use (or of ``path``), validated."""
    return _checklist(path or data_path(INSPECTION_CHECKLIST))


@lru_cache(maxsize=4)
def _checklist(path: Path) -> Checklist:
    return load_yaml(path, Checklist)


class InspectionRefused(ValueError):
    """An inspection request that cannot be honoured; the message says why."""


class InspectionNotFound(LookupError):
    """No such inspection or site."""


class InspectionForbidden(PermissionError):
    """A technician acting on another technician's inspection."""


def start(
    session: Session,
    *,
    site_id: str,
    duration: timedelta,
    technician: str,
    principal: Principal,
    now: datetime,
) -> Inspection:
    """Start an inspection of a known site for ``duration``; a technician names itself."""
    require(principal, Action.INSPECTION_START)
    if principal.is_technician and technician not in ("", principal.user_id):
        raise InspectionForbidden(
            f"a technician starts inspections in its own name ({principal.user_id}),"
            f" not {technician!r}"
        )
    if session.get(Site, site_id) is None:
        raise InspectionNotFound(f"site {site_id} not found: no inspection started")
    if not timedelta(0) < duration <= MAX_DURATION:
        raise InspectionRefused(f"duration must be between 1 minute and {MAX_DURATION}")
    if active_at(session, site_id=site_id, at=now) is not None:
        raise InspectionRefused(f"an inspection of {site_id} is already running")
    results = {
        item: {"alarm_types": types, "triggered_at": None, "restored_at": None}
        for item, types in load_checklist().items.items()
    }
    inspection = Inspection(
        site_id=site_id,
        technician=technician or principal.user_id,
        started_at=now,
        ends_at=now + duration,
        status="active",
        results=json.dumps(results),
    )
    session.add(inspection)
    session.flush()
    return inspection


def active_at(session: Session, *, site_id: str, at: datetime) -> Inspection | None:
    """The inspection running at the site at ``at``, if any."""
    return session.scalars(
        select(Inspection).where(
            Inspection.site_id == site_id,
            Inspection.status == "active",
            Inspection.started_at <= at,
            Inspection.ends_at > at,
        )
    ).first()


def record(session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime) -> None:
    """Tick the checklist: a test alarm triggered, or returned to normal."""
    if not alarm.test or change not in (AlarmChange.RAISED, AlarmChange.CLEARED):
        return
    inspection = active_at(session, site_id=alarm.site_id, at=alarm.first_seen)
    if inspection is None:
        return
    results: dict[str, dict[str, Any]] = json.loads(inspection.results)
    for item in load_checklist().items_for(alarm.alarm_type):
        entry = results.setdefault(item, {"triggered_at": None, "restored_at": None})
        if change is AlarmChange.RAISED and entry["triggered_at"] is None:
            entry["triggered_at"] = now.isoformat()
        elif change is AlarmChange.CLEARED and entry["triggered_at"] is not None:
            entry["restored_at"] = now.isoformat()
    inspection.results = json.dumps(results)


class InspectionAlarmListener:
    """Feeds test alarm changes to the running inspection's checklist."""

    def alarm_changed(
        self, session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime
    ) -> None:
        """Record triggers and returns to normal of test alarms."""
        record(session, alarm=alarm, change=change, now=now)


def overdue_test_alarms(session: Session, *, now: datetime) -> list[Alarm]:
    """Test alarms that must become real incidents now: a fire past the limit, or anything
    still active once its inspection is over."""
    limit = timedelta(seconds=load_checklist().fire_limit_s)
    due = []
    for alarm in session.scalars(
        select(Alarm).where(Alarm.test.is_(True), Alarm.state != "cleared")
    ):
        if not _during_an_inspection(session, alarm):
            continue  # a test the agent flagged by itself, not one of ours
        fire_too_long = alarm.alarm_type == "fire" and alarm.first_seen + limit <= now
        inspection_over = active_at(session, site_id=alarm.site_id, at=now) is None
        if fire_too_long or inspection_over:
            due.append(alarm)
    return due


def _during_an_inspection(session: Session, alarm: Alarm) -> bool:
    return (
        session.scalars(
            select(Inspection.id).where(
                Inspection.site_id == alarm.site_id,
                Inspection.started_at <= alarm.first_seen,
                Inspection.ends_at > alarm.first_seen,
            )
        ).first()
        is not None
    )


def end_expired(session: Session, *, now: datetime) -> int:
    """Inspections past their end without a report are marked ended."""
    expired = list(
        session.scalars(
            select(Inspection).where(Inspection.status == "active", Inspection.ends_at <= now)
        )
    )
    for inspection in expired:
        inspection.status = "ended"
    return len(expired)


def complete(
    session: Session, *, inspection_id: int, notes: str, principal: Principal, now: datetime
) -> Inspection:
    """Store the report: technician, date, results per item, notes; a technician completes
    the inspections that name it."""
    require(principal, Action.INSPECTION_COMPLETE)
    inspection = get(session, inspection_id=inspection_id)
    if principal.is_technician and inspection.technician != principal.user_id:
        raise InspectionForbidden(
            f"inspection {inspection_id} is {inspection.technician}'s, not {principal.user_id}'s"
        )
    if inspection.status == "completed":
        raise InspectionRefused(f"inspection {inspection_id} is already completed")
    inspection.status = "completed"
    inspection.completed_at = now
    inspection.ends_at = min(inspection.ends_at, now)
    inspection.notes = notes
    return inspection


def get(session: Session, *, inspection_id: int) -> Inspection:
    """One inspection, or ``InspectionNotFound``."""
    inspection = session.get(Inspection, inspection_id)
    if inspection is None:
        raise InspectionNotFound(f"inspection {inspection_id} not found")
    return inspection


def list_inspections(session: Session, *, site_id: str | None = None) -> list[Inspection]:
    """Inspections, newest first."""
    query = select(Inspection).order_by(Inspection.id.desc())
    if site_id is not None:
        query = query.where(Inspection.site_id == site_id)
    return list(session.scalars(query))


def items_done(inspection: Inspection) -> dict[str, bool]:
    """Each checklist item: seen to trigger and return to normal."""
    results: dict[str, dict[str, Any]] = json.loads(inspection.results)
    return {
        item: bool(entry.get("triggered_at") and entry.get("restored_at"))
        for item, entry in results.items()
    }


@dataclass(frozen=True)
class SiteDue:
    """A site's inspection status."""

    site_id: str
    kind: str
    region: str
    last_complete_at: datetime | None
    overdue: bool


def due(session: Session, *, now: datetime, within_days: int = 30) -> list[SiteDue]:
    """Sites whose last complete inspection is older than the period (overdue), or will be
    within ``within_days`` (due soon); never inspected counts as overdue."""
    period = timedelta(days=load_checklist().due_every_days)
    last = dict(
        session.execute(
            select(Inspection.site_id, func.max(Inspection.completed_at))
            .where(Inspection.status == "completed")
            .group_by(Inspection.site_id)
        ).all()
    )
    result = []
    for site in session.scalars(select(Site).order_by(Site.site_id)):
        done_at = last.get(site.site_id)
        if done_at is not None and done_at + period - timedelta(days=within_days) > now:
            continue
        result.append(
            SiteDue(
                site_id=site.site_id,
                kind=site.kind,
                region=site.region,
                last_complete_at=done_at,
                overdue=done_at is None or done_at + period <= now,
            )
        )
    return result
