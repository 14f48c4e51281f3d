"""MQTT ingest: persistent session, shared subscription, batched writes, acks after commit.

The MQTT client runs in a gateway process of its own (``collector.ingest.gateway``); this
process stores and applies batches on one writer thread and hands the gateway each batch's acks
once its transaction is committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import random
import threading
import time
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock
from collector.alarms import AlarmEngine
from collector.ingest.gateway import (
    COLLECTOR_SESSION_EXPIRY_S,
    AckSpec,
    GatewayConfig,
    GatewayLink,
    RawMessage,
)
from collector.ingest.store import BatchResult, BatchStore, Received
from collector.ingest.writer import BatchWriter
from protocol import Channel

log = logging.getLogger(__name__)

__all__ = ["COLLECTOR_SESSION_EXPIRY_S", "IngestService", "IngestStats", "LagHistogram"]

_EVENTS_SUFFIX = f"/{Channel.EVENTS.value}"
# Fault injection for the kill campaigns: with this probability the process dies right after
# a commit and before its ack, the window the at-least-once contract must survive.
FAULT_EXIT_AFTER_COMMIT_ENV = "SHELTERWATCH_FAULT_EXIT_AFTER_COMMIT"


def _fault_point_after_commit() -> None:
    probability = float(os.environ.get(FAULT_EXIT_AFTER_COMMIT_ENV) or 0)
    if probability and random.random() < probability:
        log.error("fault injection: exiting between commit and ack")
        os._exit(137)


# Receive-to-commit lag bounds, in seconds: a quiet collector commits within tens of
# milliseconds, a storm's backlog within seconds; past a minute, ingest is falling behind.
LAG_BOUNDS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class LagHistogram:
    """Each stored message's lag from its reception to its batch's commit, in buckets.

    The writer thread observes and a scrape reads, hence the lock: a scrape must never see a
    count that its buckets do not add up to."""

    def __init__(self, bounds_s: tuple[float, ...] = LAG_BOUNDS_S) -> None:
        self.bounds_s = bounds_s
        self._counts = [0] * (len(bounds_s) + 1)  # the last one: over the highest bound
        self._sum_s = 0.0
        self._lock = threading.Lock()

    def observe(self, lags_s: Iterable[float]) -> None:
        """Count each lag in its bucket (a bound is inclusive, as Prometheus's ``le``)."""
        counts = [0] * len(self._counts)
        total = 0.0
        for lag in lags_s:
            counts[bisect_left(self.bounds_s, lag)] += 1
            total += lag
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum_s += total

    def snapshot(self) -> tuple[list[int], float]:
        """The count per bucket (the last over the highest bound) and the sum of the lags."""
        with self._lock:
            return list(self._counts), self._sum_s


@dataclass
class IngestStats:
    """Counters for /metrics and the benchmarks."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    acks: int = 0
    batches: int = 0
    dead_letters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_lag_s: float = 0.0
    lag: LagHistogram = field(default_factory=LagHistogram)
    # Transient database errors (deadlocks, lost connections) retried, and messages given up
    # on after every retry failed (left for their agents to re-send).
    db_retries: int = 0
    abandoned: int = 0


class IngestService:
    """Async context manager: the MQTT gateway process feeding one DB writer thread."""

    def __init__(
        self,
        *,
        broker_host: str,
        broker_port: int,
        instance_id: str,
        session_factory: sessionmaker[Session],
        clock: Clock,
        engine: AlarmEngine,
        shared_group: str | None = "shelterwatch",
        username: str | None = None,
        password: str | None = None,
        ack_secret: bytes | None = None,
        batch_max: int = 2_000,
        batch_max_events: int = 100,
        batch_wait_s: float = 0.02,
    ) -> None:
        self._host = broker_host
        self._port = broker_port
        self.instance_id = instance_id
        self._clock = clock
        self._writer = BatchWriter(
            sessions=session_factory, store=BatchStore(engine), now=clock.now
        )
        self._batch_max = batch_max
        self._batch_max_events = batch_max_events
        self._batch_wait_s = batch_wait_s
        # Chunks as the gateway hands them over; unbounded, so that the gateway's reader never
        # waits for the writer (a bounded hand-off once deadlocked the two).
        self._queue: queue.Queue[list[Received]] = queue.Queue()
        self._leftover: deque[Received] = deque()
        self._stop = threading.Event()
        self._writer_thread: threading.Thread | None = None
        self._connected = False
        self._subscribed = False
        self._ready_since: float | None = None
        self.stats = IngestStats()
        self._gateway = GatewayLink(
            GatewayConfig(
                host=broker_host,
                port=broker_port,
                instance_id=instance_id,
                shared_group=shared_group,
                username=username,
                password=password,
                ack_secret=ack_secret,
            ),
            on_messages=self._on_messages,
            on_state=self._on_state,
        )

    @property
    def ready(self) -> bool:
        """Connected to the broker and subscribed (what /healthz reports)."""
        return self._connected and self._subscribed

    def watching_for_s(self) -> float:
        """How long the collector has been receiving agents' messages without a break (0 while
        it is cut from the broker). Silence heard over a shorter time proves nothing."""
        if not self.ready or self._ready_since is None:
            return 0.0
        return self._clock.monotonic() - self._ready_since

    async def __aenter__(self) -> IngestService:
        self._gateway.start()
        self._writer_thread = threading.Thread(
            target=self._write_loop, name="ingest-writer", daemon=True
        )
        self._writer_thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._gateway.publish_offline(self._clock.now())
        self._stop.set()
        loop = asyncio.get_running_loop()
        if self._writer_thread is not None:
            await loop.run_in_executor(None, self._writer_thread.join, 30)
        await loop.run_in_executor(None, self._gateway.stop)

    # -- gateway callbacks (its reader thread) -------------------------------------------

    def _on_messages(self, raw: list[RawMessage]) -> None:
        # Stamped by the gateway on the wall clock; moved onto the collector's clock (a test
        # clock may be ahead), rounded so that the system clock adds no noise.
        offset = timedelta(
            milliseconds=round((self._clock.now() - datetime.now(UTC)).total_seconds() * 1000)
        )
        items = [
            Received(
                raw_message[0],
                raw_message[1],
                datetime.fromtimestamp(raw_message[2], UTC) + offset,
                # Over the size limit: only its start came across, with its size and hash.
                oversize=(raw_message[3], raw_message[4]) if len(raw_message) == 5 else None,
            )
            for raw_message in raw
        ]
        self._queue.put(items)
        self.stats.received += len(items)

    def _on_state(self, connected: bool, subscribed: bool) -> None:
        ready = connected and subscribed
        if ready and not self.ready:
            self._ready_since = self._clock.monotonic()
        elif not ready:
            self._ready_since = None
        self._connected, self._subscribed = connected, subscribed

    # -- writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty() and not self._leftover):
            batch = self._next_batch()
            if not batch:
                continue
            try:
                self._write(batch)
            except Exception:
                # Not a database error (those are handled): a bug must not stop ingest. The
                # batch is not acked, so its agents re-send it.
                log.exception("batch of %d failed unexpectedly; not acked", len(batch))

    def _next_batch(self) -> list[Received]:
        """What is waiting, or what comes within the wait (see ``_take`` for the bounds)."""
        if not self._leftover:
            try:
                self._leftover.extend(self._queue.get(timeout=0.2))
            except queue.Empty:
                return []
        # Real time, not the collector's clock: this paces I/O, it is no domain deadline.
        deadline = time.monotonic() + self._batch_wait_s
        while len(self._leftover) < self._batch_max:
            remaining = deadline - time.monotonic()
            try:
                chunk = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            self._leftover.extend(chunk)
        return self._take()

    def _take(self) -> list[Received]:
        """The batch: bounded by its count, and by its events. An alarm costs the engine fifty
        times what a telemetry message costs the store, and every message waits for the whole
        batch's commit: a storm's backlog must not be applied a thousand alarms at a time."""
        batch: list[Received] = []
        events = 0
        while self._leftover and len(batch) < self._batch_max:
            if self._leftover[0].topic.endswith(_EVENTS_SUFFIX):
                if events == self._batch_max_events:
                    break
                events += 1
            batch.append(self._leftover.popleft())
        return batch

    def _write(self, batch: list[Received]) -> None:
        outcome = self._writer.write(batch)
        _fault_point_after_commit()
        self._publish_acks(outcome.result)
        self.stats.batches += 1
        self.stats.stored += outcome.result.stored
        self.stats.duplicates += outcome.result.duplicates
        self.stats.db_retries += outcome.retries
        self.stats.abandoned += outcome.abandoned
        for reason, n in outcome.result.dead_letters.items():
            self.stats.dead_letters[reason] += n
        now = self._clock.now()
        lags_s = [(now - item.received_at).total_seconds() for item in batch]
        self.stats.lag.observe(lags_s)
        self.stats.last_lag_s = lags_s[-1]

    def _publish_acks(self, result: BatchResult) -> None:
        specs: list[AckSpec] = [
            (agent_id, stream_id, through, ranges)
            for (agent_id, stream_id), (through, ranges) in result.acks.items()
        ]
        self._gateway.send_acks(self._clock.now(), specs)
        self.stats.acks += len(specs)
