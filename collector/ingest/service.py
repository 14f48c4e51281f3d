"""MQTT ingest: persistent session, shared subscription, batched writes, acks after commit."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import random
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock
from collector.alarms import AlarmEngine, AlarmListener
from collector.ingest.store import BatchResult, BatchStore, Received, dead_letter
from protocol import (
    AckMessage,
    Channel,
    CollectorStatus,
    agent_topic,
    collector_status_topic,
    encode,
)
from protocol.topics import AGENT_TO_COLLECTOR, agent_subscription, shared_subscription

log = logging.getLogger(__name__)

COLLECTOR_SESSION_EXPIRY_S = 60
# Fault injection for the kill campaigns: with this probability the process dies right after
# a commit and before its ack, the window the at-least-once contract must survive.
FAULT_EXIT_AFTER_COMMIT_ENV = "SHELTERWATCH_FAULT_EXIT_AFTER_COMMIT"


def _fault_point_after_commit() -> None:
    probability = float(os.environ.get(FAULT_EXIT_AFTER_COMMIT_ENV) or 0)
    if probability and random.random() < probability:
        log.error("fault injection: exiting between commit and ack")
        os._exit(137)


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


class IngestService:
    """Async context manager: a paho network thread feeding one DB writer thread."""

    def __init__(
        self,
        *,
        broker_host: str,
        broker_port: int,
        instance_id: str,
        session_factory: sessionmaker[Session],
        clock: Clock,
        listeners: Sequence[AlarmListener] = (),
        shared_group: str | None = "shelterwatch",
        username: str | None = None,
        password: str | None = None,
        batch_max: int = 500,
        batch_wait_s: float = 0.02,
    ) -> None:
        self._host = broker_host
        self._port = broker_port
        self.instance_id = instance_id
        self._sessions = session_factory
        self._clock = clock
        self._store = BatchStore(AlarmEngine(listeners))
        self._group = shared_group
        self._batch_max = batch_max
        self._batch_wait_s = batch_wait_s
        self._queue: queue.Queue[Received] = queue.Queue(maxsize=100_000)
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._connected = False
        self._subscribed = False
        self.stats = IngestStats()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"collector-{instance_id}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            self._client.username_pw_set(username, password)
        status_topic = collector_status_topic(instance_id)
        self._client.will_set(
            status_topic,
            encode(CollectorStatus(collector_id=instance_id, online=False)),
            qos=1,
            retain=True,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.max_inflight_messages_set(1000)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def ready(self) -> bool:
        """Connected to the broker and subscribed (what /healthz reports)."""
        return self._connected and self._subscribed

    async def __aenter__(self) -> IngestService:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = COLLECTOR_SESSION_EXPIRY_S
        # connect_async + loop_start: an unreachable broker is retried in the background.
        self._client.connect_async(
            self._host, self._port, keepalive=30, clean_start=False, properties=props
        )
        self._client.loop_start()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._writer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.publish(
            collector_status_topic(self.instance_id),
            encode(
                CollectorStatus(collector_id=self.instance_id, online=False, ts=self._clock.now())
            ),
            qos=1,
            retain=True,
        )
        self._stop.set()
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            await loop.run_in_executor(None, self._writer.join, 30)
        self._client.disconnect()
        self._client.loop_stop()

    # -- MQTT callbacks (network thread) -------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        self._connected = True
        filters = [
            (
                shared_subscription(self._group, channel)
                if self._group
                else agent_subscription(channel),
                1,
            )
            for channel in AGENT_TO_COLLECTOR
        ]
        client.subscribe(filters)
        client.publish(
            collector_status_topic(self.instance_id),
            encode(
                CollectorStatus(collector_id=self.instance_id, online=True, ts=self._clock.now())
            ),
            qos=1,
            retain=True,
        )
        log.info("collector %s connected to %s:%d", self.instance_id, self._host, self._port)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed = True

    def _on_disconnect(self, *_args: Any) -> None:
        if self._connected:
            log.warning("collector lost the broker; paho reconnects")
        self._connected = False
        self._subscribed = False

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # Blocks when the writer is far behind: back-pressure to the broker, nothing dropped.
        self._queue.put(Received(msg.topic, bytes(msg.payload), self._clock.now()))
        self.stats.received += 1

    # -- writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._next_batch()
            if batch:
                self._write(batch)

    def _next_batch(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = self._clock.monotonic() + self._batch_wait_s
        while len(batch) < self._batch_max:
            remaining = deadline - self._clock.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=max(remaining, 0.0))
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Received]) -> None:
        try:
            result = self._commit(batch)
        except SQLAlchemyError:
            # One bad message must not stall ingest: retry one by one, dead-lettering failures.
            log.exception("batch of %d failed; retrying message by message", len(batch))
            result = BatchResult()
            for item in batch:
                try:
                    single = self._commit([item])
                except SQLAlchemyError as err:
                    self._dead_letter_db_error(item, err)
                    continue
                result.acks.update(single.acks)
                result.stored += single.stored
                result.duplicates += single.duplicates
        _fault_point_after_commit()
        self._publish_acks(result)
        self.stats.batches += 1
        self.stats.stored += result.stored
        self.stats.duplicates += result.duplicates
        for reason, n in result.dead_letters.items():
            self.stats.dead_letters[reason] += n
        self.stats.last_lag_s = (self._clock.now() - batch[-1].received_at).total_seconds()

    def _commit(self, batch: list[Received]) -> BatchResult:
        with self._sessions() as session:
            result = self._store.process(session, batch, now=self._clock.now())
            session.commit()
        return result

    def _dead_letter_db_error(self, item: Received, err: SQLAlchemyError) -> None:
        log.error("message on %s dead-lettered after a database error: %s", item.topic, err)
        try:
            with self._sessions() as session:
                dead_letter(session, item, reason="db_error", detail=str(err))
                session.commit()
            self.stats.dead_letters["db_error"] += 1
        except SQLAlchemyError:
            log.exception("cannot even dead-letter; the agent will re-send it")

    def _publish_acks(self, result: BatchResult) -> None:
        now = self._clock.now()
        for (agent_id, stream_id), (through, ranges) in result.acks.items():
            ack = AckMessage(
                agent_id=agent_id,
                stream_id=stream_id,
                events_through=through,
                telemetry=ranges,
                collector_id=self.instance_id,
                ts=now,
            )
            self._client.publish(agent_topic(agent_id, Channel.ACK), encode(ack), qos=1)
            self.stats.acks += 1
