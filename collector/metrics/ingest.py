"""Ingest: dead letters by reason (every instance's, from the database) and this instance's
own counters and receive-to-commit lag (from its ``IngestStats``, in memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.ingest.admission import DEAD_LETTER_REASONS
from collector.ingest.models import DeadLetterTotal

# Reads the running ingest's ``IngestStats`` (what ``collector run`` passes).
IngestStatsSource = Callable[[], Any]


def dead_letters(session: Session) -> Iterator[CounterMetricFamily]:
    """``shelterwatch_dead_letters_total{reason}``: every reason of docs/protocol.md, 0 until it
    happens. Counted as they come (the dead letters themselves are pruned). Cost: one read of a
    table of a dozen rows."""
    totals = dict.fromkeys(DEAD_LETTER_REASONS, 0)
    for reason, n in session.execute(select(DeadLetterTotal.reason, DeadLetterTotal.total)):
        totals[reason] = n
    family = CounterMetricFamily(
        "shelterwatch_dead_letters",
        "Messages mis en lettre morte, par motif / Messages dead-lettered, by reason",
        labels=["reason"],
    )
    for reason, n in totals.items():
        family.add_metric([reason], n)
    yield family


class IngestFigures(Collector):
    """This instance's ingest counters and lag histogram. Cost: a copy of a few numbers."""

    def __init__(self, stats: IngestStatsSource) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Any]:
        """The families, read from the running ingest."""
        stats = self._stats()
        for name, help_text, value in [
            ("received", "Messages MQTT reçus / MQTT messages received", stats.received),
            ("stored", "Messages enregistrés (nouveaux) / Messages stored (new)", stats.stored),
            (
                "duplicates",
                "Renvois déjà enregistrés / Re-sent messages already stored",
                stats.duplicates,
            ),
            (
                "acks",
                "Acquittements publiés après commit / Acks published after commit",
                stats.acks,
            ),
        ]:
            counter = CounterMetricFamily(f"shelterwatch_ingest_{name}", help_text)
            counter.add_metric([], value)
            yield counter
        counts, sum_s = stats.lag.snapshot()
        buckets = []
        cumulative = 0
        for bound, n in zip([*stats.lag.bounds_s, float("inf")], counts, strict=True):
            cumulative += n
            buckets.append((_le(bound), cumulative))
        lag = HistogramMetricFamily(
            "shelterwatch_ingest_lag_seconds",
            "Délai entre réception et commit de chaque message / Receive-to-commit lag of each "
            "message",
            buckets=buckets,
            sum_value=sum_s,
        )
        yield lag
        last = GaugeMetricFamily(
            "shelterwatch_ingest_last_batch_lag_seconds",
            "Délai réception-commit du dernier message du dernier lot / Receive-to-commit lag "
            "of the last batch's newest message",
        )
        last.add_metric([], stats.last_lag_s)
        yield last
        total = stats.stored + stats.duplicates
        ratio = GaugeMetricFamily(
            "shelterwatch_ingest_dedup_ratio",
            "Part des messages qui étaient des renvois / Share of received messages that were "
            "re-sends",
        )
        ratio.add_metric([], stats.duplicates / total if total else 0.0)
        yield ratio


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
