"""The NOC's standing reports over a period: ticket summary, synthesis of malfunctions, and the
detail of one equipment (alarms, status, performance). Every figure is scoped to the caller."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.identity.access import Principal
from collector.identity.scope import site_scope
from collector.inventory.models import Agent, Equipment
from collector.telemetry.service import equipment_figures
from collector.tickets.models import Ticket
from collector.tickets.queries import ticket_scope


@dataclass
class TicketSummary:
    """Tickets opened in the period: counts, restoration times, breaches."""

    since: datetime
    until: datetime
    opened: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    by_criticality: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    restored: int = 0
    mean_time_to_restore_min: float | None = None
    sla_breaches: int = 0


@dataclass
class MalfunctionLine:
    """One kind of malfunction in the period."""

    key: str
    occurrences: int
    sites: int
    still_open: int


@dataclass
class Malfunctions:
    """What failed in the period, by alarm type and by site (most frequent first)."""

    since: datetime
    until: datetime
    total: int
    by_alarm_type: list[MalfunctionLine]
    by_site: list[MalfunctionLine]


@dataclass
class PointPerformance:
    """A measured point over the period."""

    point: str
    samples: int
    minimum: float
    mean: float
    maximum: float
    unit: str | None


@dataclass
class EquipmentReport:
    """One equipment: its alarms in the period, its status now, its measured performance."""

    site_id: str
    equipment_id: str
    kind: str
    model: str
    poll_ok: bool | None
    last_poll_error: str | None
    open_alarms: list[dict[str, object]]
    alarms_in_period: int
    alarms_by_type: dict[str, int]
    performance: list[PointPerformance]


def ticket_summary(
    session: Session, *, principal: Principal, since: datetime, until: datetime
) -> TicketSummary:
    """Counts by state, criticality and kind of tickets opened in [since, until)."""
    query = select(Ticket).where(Ticket.opened_at >= since, Ticket.opened_at < until)
    if principal.is_client:
        query = query.where(ticket_scope(principal))
    summary = TicketSummary(since=since, until=until)
    restore_minutes = []
    for ticket in session.scalars(query):
        summary.opened += 1
        summary.by_state[ticket.state] = summary.by_state.get(ticket.state, 0) + 1
        summary.by_criticality[ticket.criticality] = (
            summary.by_criticality.get(ticket.criticality, 0) + 1
        )
        summary.by_kind[ticket.kind] = summary.by_kind.get(ticket.kind, 0) + 1
        summary.sla_breaches += ticket.sla_breached
        if ticket.restored_at is not None:
            restore_minutes.append((ticket.restored_at - ticket.opened_at).total_seconds() / 60)
    summary.restored = len(restore_minutes)
    if restore_minutes:
        summary.mean_time_to_restore_min = round(sum(restore_minutes) / len(restore_minutes), 1)
    return summary


def malfunctions(
    session: Session, *, principal: Principal, since: datetime, until: datetime, top: int = 20
) -> Malfunctions:
    """Alarms first seen in [since, until), grouped by type and by site."""
    base = select(Alarm).where(
        Alarm.first_seen >= since, Alarm.first_seen < until, Alarm.test.is_(False)
    )
    scope = site_scope(principal, Alarm.site_id)
    if scope is not None:
        base = base.where(scope)
    rows = base.subquery()

    def grouped(column: str) -> list[MalfunctionLine]:
        col = rows.c[column]
        query = (
            select(
                col,
                func.count(),
                func.count(func.distinct(rows.c.site_id)),
                func.sum(case((rows.c.state != "cleared", 1), else_=0)),
            )
            .group_by(col)
            .order_by(func.count().desc(), col)
            .limit(top)
        )
        return [
            MalfunctionLine(key=k, occurrences=n, sites=s, still_open=int(o or 0))
            for k, n, s, o in session.execute(query)
        ]

    total = session.scalar(select(func.count()).select_from(rows)) or 0
    return Malfunctions(
        since=since,
        until=until,
        total=total,
        by_alarm_type=grouped("alarm_type"),
        by_site=grouped("site_id"),
    )


def equipment_report(
    session: Session,
    *,
    site_id: str,
    equipment_id: str,
    since: datetime,
    until: datetime,
) -> EquipmentReport:
    """The detail of one equipment (the caller's access to the site is checked by the route)."""
    item = session.get(Equipment, (site_id, equipment_id))
    agent = session.scalars(select(Agent).where(Agent.site_id == site_id)).first()
    health = {}
    if agent is not None:
        health = {d["device_id"]: d for d in json.loads(agent.devices_json)}.get(equipment_id, {})
    alarms = select(Alarm).where(Alarm.site_id == site_id, Alarm.equipment_id == equipment_id)
    open_alarms: list[dict[str, object]] = [
        {
            "point": a.point,
            "alarm_type": a.alarm_type,
            "severity": a.severity,
            "state": a.state,
            "since": a.first_seen.isoformat(),
        }
        for a in session.scalars(alarms.where(Alarm.state != "cleared").order_by(Alarm.id))
    ]
    in_period = alarms.where(Alarm.first_seen >= since, Alarm.first_seen < until).subquery()
    by_type: dict[str, int] = dict(
        session.execute(
            select(in_period.c.alarm_type, func.count()).group_by(in_period.c.alarm_type)
        ).all()
    )
    performance = [
        PointPerformance(
            point=f.point,
            samples=f.samples,
            minimum=f.minimum,
            mean=round(f.mean, 3),
            maximum=f.maximum,
            unit=f.unit,
        )
        for f in equipment_figures(
            session, site_id=site_id, equipment_id=equipment_id, since=since, until=until
        )
    ]
    return EquipmentReport(
        site_id=site_id,
        equipment_id=equipment_id,
        kind=item.kind if item else "",
        model=item.model if item else "",
        poll_ok=health.get("ok"),
        last_poll_error=health.get("last_error"),
        open_alarms=open_alarms,
        alarms_in_period=sum(by_type.values()),
        alarms_by_type=by_type,
        performance=performance,
    )
