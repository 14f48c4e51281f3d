"""The fleet at a glance: agents connected or not, sites by state, the agents' trap and syslog
listeners. Fleet totals only: there are 21,000 agents, never a series per agent or per site."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.inventory.models import Agent
from collector.sites.service import SITE_STATUSES, status_counts

AGENT_STATES = ("connected", "unreachable")


def agents(session: Session) -> Iterator[GaugeMetricFamily]:
    """``shelterwatch_agents{state}``: enrolled agents by the ``reachable`` flag the API shows
    (set by birth, Last Will and heartbeat silence). Cost: one ``GROUP BY`` over the agents
    table, two rows back."""
    counts = dict.fromkeys(AGENT_STATES, 0)
    for reachable, n in session.execute(
        select(Agent.reachable, func.count()).group_by(Agent.reachable)
    ):
        counts["connected" if reachable else "unreachable"] += n
    family = GaugeMetricFamily(
        "shelterwatch_agents",
        "Agents connectés ou injoignables / Agents connected or unreachable",
        labels=["state"],
    )
    for state, n in counts.items():
        family.add_metric([state], n)
    yield family


def sites(session: Session) -> Iterator[GaugeMetricFamily]:
    """``shelterwatch_sites{state}``: sites by the status of the NOC's site list (``unreachable``
    before ``alarm`` before ``ok``). Cost: one query, two indexed ``EXISTS`` per site, three
    rows back."""
    counts = status_counts(session)
    family = GaugeMetricFamily(
        "shelterwatch_sites",
        "Sites par état / Sites by state (unreachable, alarm, ok)",
        labels=["state"],
    )
    for state in SITE_STATUSES:
        family.add_metric([state], counts[state])
    yield family


def listener_totals(session: Session) -> Iterator[GaugeMetricFamily]:
    """The fleet's listener counts summed from each agent's last heartbeat. Gauges, not
    counters: each agent counts since it started, so a restart lowers the sum. Cost: one row and
    one small JSON document per agent that reports listeners (the one per-agent loop of a
    scrape: the counts live in that document, which no portable SQL sums)."""
    yield from _listener_families(
        session.scalars(select(Agent.listeners_json).where(Agent.listeners_json.is_not(None)))
    )


def _listener_families(reports: Iterable[str | None]) -> Iterator[GaugeMetricFamily]:
    datagrams: Counter[tuple[str, str]] = Counter()
    rejected: Counter[tuple[str, str]] = Counter()
    for report in reports:
        for listener in json.loads(report or "[]"):
            kind = str(listener.get("kind", ""))
            datagrams[(kind, "received")] += int(listener.get("received", 0))
            datagrams[(kind, "accepted")] += int(listener.get("accepted", 0))
            for reason, n in (listener.get("rejected") or {}).items():
                rejected[(kind, str(reason))] += int(n)
    received = GaugeMetricFamily(
        "shelterwatch_agent_listener_datagrams",
        "Datagrammes reçus et acceptés par les écouteurs trap et syslog des agents, toute la "
        "flotte, au dernier rapport / Datagrams the agents' trap and syslog listeners received "
        "and accepted, fleet-wide, as last reported (each agent counts since it started)",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), n in sorted(datagrams.items()):
        received.add_metric([kind, outcome], n)
    yield received
    refused = GaugeMetricFamily(
        "shelterwatch_agent_listener_rejected",
        "Datagrammes refusés par les écouteurs des agents, par motif / Datagrams the agents' "
        "listeners rejected, fleet-wide, by reason, as last reported",
        labels=["kind", "reason"],
    )
    for (kind, reason), n in sorted(rejected.items()):
        refused.add_metric([kind, reason], n)
    yield refused
