"""Prometheus metrics (``GET /metrics``): fleet, site, ticket and alarm figures read from the
database at scrape time (every instance reports the same truth), this instance's ingest and
HTTP figures, its process and build. Fleet totals only: never a series per agent or per site.

What each family costs a scrape is said where it is built: ``fleet.py`` (agents, sites,
listeners), ``work.py`` (tickets, alarms), ``ingest.py`` (dead letters, ingest), ``build.py``.
The HTTP histogram is filled by ``collector.http_metrics`` and handed in by the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from collector.metrics import fleet, ingest, work
from collector.metrics.build import BuildInfo
from collector.metrics.ingest import IngestFigures, IngestStatsSource

__all__ = ["IngestStatsSource", "render_metrics"]


class _DatabaseFigures(Collector):
    """The figures read from the database, in one session per scrape."""

    def __init__(self, sessions: sessionmaker[Session], now: datetime) -> None:
        self._sessions = sessions
        self._now = now

    def collect(self) -> Iterator[Any]:
        """Every database family (see each one's cost)."""
        with self._sessions() as session:
            yield from fleet.agents(session)
            yield from fleet.sites(session)
            yield from work.tickets(session, now=self._now)
            yield from work.alarms(session)
            yield from ingest.dead_letters(session)
            yield from fleet.listener_totals(session)


def render_metrics(
    sessions: sessionmaker[Session],
    ingest_stats: IngestStatsSource | None,
    *,
    now: datetime,
    http: Collector | None = None,
) -> bytes:
    """The Prometheus text exposition as of ``now`` (the SLA time left is read at it)."""
    registry = CollectorRegistry()
    registry.register(BuildInfo())
    registry.register(_DatabaseFigures(sessions, now))
    if ingest_stats is not None:
        registry.register(IngestFigures(ingest_stats))
    if http is not None:
        registry.register(http)
    # process_* (CPU, memory, open files, start time: /proc, Linux) and python_info.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return generate_latest(registry)
