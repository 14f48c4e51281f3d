"""A subscriber at the broker, past the agent's link: every copy the broker delivered of each
of one agent's events and telemetry messages, when the first arrived, and its births.

The collector stores each (stream, seq) once, so its database cannot say how often a message
was sent; the broker delivers every copy, so this is where re-sends are counted. Without a
collector it can also ack what it receives, unsigned, as a collector would after its commit.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import AckMessage, Channel, CollectorStatus, SeqRange, agent_topic, encode
from protocol.topics import collector_status_topic

Key = tuple[str, int]


class DeliverySpy:
    """Counts what the broker delivers of ``agent_id``'s traffic (``time.monotonic()`` times)."""

    def __init__(self, host: str, port: int, agent_id: str, *, auto_ack: bool = False) -> None:
        self.agent_id = agent_id
        self.auto_ack = auto_ack
        self.copies: Counter[Key] = Counter()
        self.arrived: dict[Key, float] = {}
        self.births = 0
        self._stream = ""
        self._events: set[int] = set()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(host, port)
        self.client.subscribe(
            [
                (agent_topic(agent_id, Channel.EVENTS), 1),
                (agent_topic(agent_id, Channel.TELEMETRY), 1),
                (agent_topic(agent_id, Channel.STATUS), 1),
            ]
        )
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the spy could not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload) if msg.payload else {}
        kind = body.get("kind")
        if kind == "birth" and not msg.retain:
            with self._lock:
                self.births += 1
            return
        if kind not in ("alarm", "state", "telemetry"):
            return
        space = "telemetry" if kind == "telemetry" else "event"
        key = (space, int(body["seq"]))
        with self._lock:
            self.copies[key] += 1
            self.arrived.setdefault(key, time.monotonic())
            self._stream = body["stream_id"]
            if space == "event":
                self._events.add(key[1])
            through = 0
            while through + 1 in self._events:
                through += 1
        if self.auto_ack:
            ranges = [SeqRange(first=key[1], last=key[1])] if space == "telemetry" else []
            self.ack(through, ranges)

    def event_copies(self) -> dict[int, int]:
        """Event seq -> copies delivered."""
        with self._lock:
            return {seq: n for (space, seq), n in self.copies.items() if space == "event"}

    def ack(self, events_through: int, telemetry: list[SeqRange] | None = None) -> None:
        """Ack as a collector does after its commit (QoS 0, unsigned)."""
        ack = AckMessage(
            agent_id=self.agent_id,
            stream_id=self._stream,
            events_through=events_through,
            telemetry=telemetry or [],
            collector_id="spy",
            ts=datetime.now(UTC),
        )
        self.client.publish(agent_topic(self.agent_id, Channel.ACK), encode(ack), qos=0)

    def collector_status(self, instance: str, *, online: bool) -> None:
        """Publish a collector instance's retained status (``online=False``: gone)."""
        status = CollectorStatus(collector_id=instance, online=online, ts=datetime.now(UTC))
        self.client.publish(
            collector_status_topic(instance), encode(status), qos=1, retain=True
        ).wait_for_publish(5)

    def forget_collector(self, instance: str) -> None:
        """Clear that instance's retained status, so it does not outlive the test."""
        self.client.publish(
            collector_status_topic(instance), b"", qos=1, retain=True
        ).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect (first: the network thread then ends at once, not at its next tick)."""
        self.client.disconnect()
        self.client.loop_stop()
