"""Site inventory reads: status at a glance for the NOC overview."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.access import Principal, site_scope
from collector.alarms.models import Alarm
from collector.alarms.service import SEVERITY_RANK
from collector.sites.models import Agent, Site
from collector.sites.schemas import SiteStatus


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


def _status(site: SiteStatus) -> str:
    if site.agent_reachable is False:
        return "unreachable"
    return "alarm" if site.open_alarms else "ok"
