"""Site inventory reads: status at a glance for the NOC overview, one site's page, its
equipment with health and open alarms, its agent."""

from __future__ import annotations

import json

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.alarms.service import SEVERITY_RANK
from collector.identity.access import Principal
from collector.identity.scope import site_scope, visible_site
from collector.inventory.models import Agent, Site
from collector.sites import editing
from collector.sites.schemas import (
    AgentSummary,
    EquipmentRead,
    ServiceRead,
    SiteDetail,
    SiteStatus,
)


def site_statuses(
    session: Session,
    *,
    principal: Principal,
    region: str | None = None,
    kind: str | None = None,
    status: str | None = None,
) -> list[SiteStatus]:
    """Every visible site with its agent state and worst open alarm, by region then id.

    ``status``: ``alarm`` (an open alarm), ``unreachable`` (its agent is), ``ok`` (neither).
    """
    query = select(Site)
    scope = site_scope(principal, Site.site_id)
    if scope is not None:
        query = query.where(scope)
    if region is not None:
        query = query.where(Site.region == region)
    if kind is not None:
        query = query.where(Site.kind == kind)
    sites = list(session.scalars(query.order_by(Site.region, Site.site_id)))
    agents = {a.site_id: a for a in session.scalars(select(Agent))}
    worst: dict[str, str] = {}
    counts: dict[str, int] = {}
    for site_id, severity in session.execute(
        select(Alarm.site_id, Alarm.severity).where(Alarm.state != "cleared")
    ):
        counts[site_id] = counts.get(site_id, 0) + 1
        if SEVERITY_RANK.get(severity, 9) < SEVERITY_RANK.get(worst.get(site_id, ""), 9):
            worst[site_id] = severity
    result = []
    for site in sites:
        agent = agents.get(site.site_id)
        result.append(
            SiteStatus(
                site_id=site.site_id,
                kind=site.kind,
                name=site.name,
                region=site.region,
                agent_id=agent.agent_id if agent else None,
                agent_reachable=agent.reachable if agent else None,
                last_seen=agent.last_seen if agent else None,
                outbox_pending=(agent.outbox_events_pending + agent.outbox_telemetry_pending)
                if agent
                else None,
                worst_severity=worst.get(site.site_id),
                open_alarms=counts.get(site.site_id, 0),
            )
        )
    if status is not None:
        result = [r for r in result if _status(r) == status]
    return result


# What ``status`` filters on, the worst first.
SITE_STATUSES = ("unreachable", "alarm", "ok")


def _status(site: SiteStatus) -> str:
    # status_counts says the same in SQL: change both together.
    if site.agent_reachable is False:
        return "unreachable"
    return "alarm" if site.open_alarms else "ok"


def status_counts(session: Session) -> dict[str, int]:
    """How many sites of the whole fleet are in each ``status`` (every status named, 0 included),
    counted by the database: two indexed ``EXISTS`` per site, no row comes back to Python."""
    unreachable = exists().where(Agent.site_id == Site.site_id, Agent.reachable.is_(False))
    alarmed = exists().where(Alarm.site_id == Site.site_id, Alarm.state != "cleared")
    status = case((unreachable, "unreachable"), (alarmed, "alarm"), else_="ok")
    counts = dict.fromkeys(SITE_STATUSES, 0)
    for name, n in session.execute(select(status, func.count()).select_from(Site).group_by(status)):
        counts[name] = n
    return counts


def site_agent(session: Session, *, site_id: str) -> Agent | None:
    """The agent enrolled at a site (the first, should there be several)."""
    return session.scalars(select(Agent).where(Agent.site_id == site_id)).first()


def equipment_of(session: Session, *, site_id: str) -> list[EquipmentRead]:
    """A site's equipment with the poll health its agent reports and its open alarm count."""
    agent = site_agent(session, site_id=site_id)
    health = {d["device_id"]: d for d in json.loads(agent.devices_json)} if agent else {}
    open_alarms = dict(
        session.execute(
            select(Alarm.equipment_id, func.count())
            .where(Alarm.site_id == site_id, Alarm.state != "cleared")
            .group_by(Alarm.equipment_id)
        ).all()
    )
    return [
        EquipmentRead.model_validate(item).model_copy(
            update={
                "health": health.get(item.equipment_id),
                "open_alarms": open_alarms.get(item.equipment_id, 0),
            }
        )
        for item in editing.list_equipment(session, site_id=site_id)
    ]


def site_detail(session: Session, *, principal: Principal, site_id: str) -> SiteDetail:
    """A site's page: the site, its agent, its equipment and the services the caller sees."""
    site = visible_site(session, principal=principal, site_id=site_id)
    agent = site_agent(session, site_id=site_id)
    services = editing.list_services(session, principal=principal, site_id=site_id)
    return SiteDetail(
        site_id=site.site_id,
        kind=site.kind,
        name=site.name,
        region=site.region,
        parent_nro=site.parent_nro,
        address=site.address,
        agent=AgentSummary.model_validate(agent) if agent else None,
        equipment=equipment_of(session, site_id=site_id),
        services=[ServiceRead.model_validate(s) for s in services],
    )
