"""Prometheus metrics: ingest counters from this instance, ticket and alarm gauges from SQL, and
the fleet's trap and syslog listener totals (by kind and reason, never a series per agent:
there are 21,000 of them)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from collector.alarms.models import Alarm
from collector.ingest.models import DeadLetterTotal
from collector.inventory.models import Agent
from collector.tickets.lifecycle import OPEN_STATES
from collector.tickets.models import Ticket

IngestStatsSource = Callable[[], Any]


class _SqlCollector(Collector):
    """Reads its figures at scrape time, so every instance reports the same database truth."""

    def __init__(self, sessions: sessionmaker[Session], ingest: IngestStatsSource | None) -> None:
        self._sessions = sessions
        self._ingest = ingest

    def collect(self) -> Iterator[Any]:
        with self._sessions() as session:
            open_tickets = GaugeMetricFamily(
                "shelterwatch_open_tickets", "Open tickets by criticality", labels=["criticality"]
            )
            for criticality, n in session.execute(
                select(Ticket.criticality, func.count())
                .where(Ticket.state.in_([s.value for s in OPEN_STATES]))
                .group_by(Ticket.criticality)
            ):
                open_tickets.add_metric([criticality], n)
            yield open_tickets
            breached = GaugeMetricFamily(
                "shelterwatch_sla_breached_open_tickets", "Open tickets past their GTR"
            )
            breached.add_metric(
                [],
                session.scalar(
                    select(func.count())
                    .select_from(Ticket)
                    .where(
                        Ticket.sla_breached.is_(True),
                        Ticket.state.in_([s.value for s in OPEN_STATES]),
                    )
                )
                or 0,
            )
            yield breached
            alarms = GaugeMetricFamily(
                "shelterwatch_open_alarms",
                "Open alarms by severity and state",
                labels=["severity", "state"],
            )
            for severity, state, n in session.execute(
                select(Alarm.severity, Alarm.state, func.count())
                .where(Alarm.state != "cleared")
                .group_by(Alarm.severity, Alarm.state)
            ):
                alarms.add_metric([severity, state], n)
            yield alarms
            letters = CounterMetricFamily(
                "shelterwatch_dead_letters", "Messages dead-lettered, by reason", labels=["reason"]
            )
            # Counted as they come (the dead letters themselves are pruned).
            for reason, n in session.execute(select(DeadLetterTotal.reason, DeadLetterTotal.total)):
                letters.add_metric([reason], n)
            yield letters
            yield from _listener_totals(
                session.scalars(
                    select(Agent.listeners_json).where(Agent.listeners_json.is_not(None))
                )
            )
        if self._ingest is not None:
            stats = self._ingest()
            for name, help_text, value in [
                ("received", "MQTT messages received by this instance", stats.received),
                ("stored", "Messages stored (new)", stats.stored),
                ("duplicates", "Re-sent messages already stored", stats.duplicates),
                ("acks", "Acks published after commit", stats.acks),
            ]:
                counter = CounterMetricFamily(f"shelterwatch_ingest_{name}", help_text)
                counter.add_metric([], value)
                yield counter
            lag = GaugeMetricFamily(
                "shelterwatch_ingest_lag_seconds", "Receive-to-commit lag of the last batch"
            )
            lag.add_metric([], stats.last_lag_s)
            yield lag
            total = stats.stored + stats.duplicates
            ratio = GaugeMetricFamily(
                "shelterwatch_ingest_dedup_ratio", "Share of received messages that were re-sends"
            )
            ratio.add_metric([], stats.duplicates / total if total else 0.0)
            yield ratio


def _listener_totals(reports: Iterable[str | None]) -> Iterator[GaugeMetricFamily]:
    """The fleet's listener counts summed from each agent's last heartbeat. Gauges, not
    counters: each agent counts since it started, so a restart lowers the sum."""
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
        "Datagrams the agents' trap and syslog listeners received and accepted, fleet-wide, "
        "as last reported (each agent counts since it started)",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), n in sorted(datagrams.items()):
        received.add_metric([kind, outcome], n)
    yield received
    refused = GaugeMetricFamily(
        "shelterwatch_agent_listener_rejected",
        "Datagrams the agents' listeners rejected, fleet-wide, by reason, as last reported",
        labels=["kind", "reason"],
    )
    for (kind, reason), n in sorted(rejected.items()):
        refused.add_metric([kind, reason], n)
    yield refused


def render_metrics(sessions: sessionmaker[Session], ingest: IngestStatsSource | None) -> bytes:
    """The Prometheus text exposition."""
    registry = CollectorRegistry()
    registry.register(_SqlCollector(sessions, ingest))
    return generate_latest(registry)
