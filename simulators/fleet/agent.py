"""A lightweight virtual agent speaking the real wire contract over its own MQTT connection."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from clocks import Clock
from protocol import (
    AckMessage,
    AlarmEvent,
    AlarmSnapshot,
    BirthMessage,
    Channel,
    HeartbeatMessage,
    OutboxHealth,
    Severity,
    TelemetryMessage,
    TelemetrySample,
    Transition,
    WillMessage,
    agent_topic,
    encode,
)

log = logging.getLogger(__name__)


@dataclass
class FleetStats:
    """Counters shared by every virtual agent of a fleet."""

    connected: int = 0
    connect_failures: int = 0
    offered: int = 0
    offered_alarms: int = 0
    resent: int = 0
    acked: int = 0
    lags_s: list[float] = field(default_factory=list)


@dataclass
class _Pending:
    payload: bytes
    topic: str
    created_mono: float
    sent_mono: float


class VirtualAgent:
    """Birth + Will, gapless event seqs, telemetry seqs, heartbeats, re-send until acked."""

    def __init__(
        self,
        *,
        agent_id: str,
        site_id: str,
        clock: Clock,
        stats: FleetStats,
        attach: Callable[[mqtt.Client], None],
        session_expiry_s: int = 3600,
    ) -> None:
        self.agent_id = agent_id
        self.site_id = site_id
        self.stream_id = uuid.uuid4().hex
        self.boot = 1
        self._clock = clock
        self._stats = stats
        self._event_seq = 0
        self._telemetry_seq = 0
        self._events: dict[int, _Pending] = {}
        self._telemetry: dict[int, _Pending] = {}
        self._active: dict[tuple[str, str, str], AlarmSnapshot] = {}
        self.connected = False
        self._expiry = session_expiry_s
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"agent-{agent_id}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        attach(self.client)

    def connect(self, host: str, port: int) -> None:
        """Open the TCP connection (loopback: immediate) and send CONNECT with the Will."""
        will = WillMessage(
            agent_id=self.agent_id,
            stream_id=self.stream_id,
            seq=self._event_seq,
            ts=self._clock.now(),
            clock_synced=True,
            site_id=self.site_id,
            boot=self.boot,
        )
        self.client.will_set(
            agent_topic(self.agent_id, Channel.STATUS), encode(will), qos=1, retain=True
        )
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._expiry
        self.client.connect(host, port, keepalive=60, clean_start=False, properties=props)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._stats.connect_failures += 1
            return
        self.connected = True
        self._stats.connected += 1
        client.subscribe(agent_topic(self.agent_id, Channel.ACK), qos=1)
        birth = BirthMessage(
            agent_id=self.agent_id,
            stream_id=self.stream_id,
            seq=self._event_seq,
            ts=self._clock.now(),
            clock_synced=True,
            site_id=self.site_id,
            boot=self.boot,
            agent_version="fleet-sim",
            config_hash="sha256:fleet",
            alarms=list(self._active.values()),
        )
        client.publish(
            agent_topic(self.agent_id, Channel.STATUS), encode(birth), qos=1, retain=True
        )
        self.resend(older_than_s=0.0)

    def _on_disconnect(self, *_args: Any) -> None:
        if self.connected:
            self._stats.connected -= 1
        self.connected = False

    def alarm(
        self,
        *,
        equipment_id: str,
        point: str,
        alarm_type: str,
        transition: Transition,
        severity: Severity,
    ) -> None:
        """Publish one alarm transition with the next gapless seq."""
        self._event_seq += 1
        now = self._clock.now()
        event = AlarmEvent(
            agent_id=self.agent_id,
            stream_id=self.stream_id,
            seq=self._event_seq,
            ts=now,
            clock_synced=True,
            site_id=self.site_id,
            equipment_id=equipment_id,
            point=point,
            alarm_type=alarm_type,
            transition=transition,
            severity=severity,
            reason="fleet simulator",
        )
        key = (equipment_id, point, alarm_type)
        if transition is Transition.RAISED:
            self._active[key] = AlarmSnapshot(
                equipment_id=equipment_id,
                point=point,
                alarm_type=alarm_type,
                severity=severity,
                since=now,
            )
        else:
            self._active.pop(key, None)
        self._stats.offered_alarms += 1
        self._send(self._events, self._event_seq, Channel.EVENTS, encode(event))

    def is_active(self, equipment_id: str, point: str, alarm_type: str) -> bool:
        """True while that alarm is raised at this virtual site."""
        return (equipment_id, point, alarm_type) in self._active

    def telemetry(self, value: float) -> None:
        """Publish one telemetry batch of one sample."""
        self._telemetry_seq += 1
        now = self._clock.now()
        message = TelemetryMessage(
            agent_id=self.agent_id,
            stream_id=self.stream_id,
            seq=self._telemetry_seq,
            ts=now,
            clock_synced=True,
            site_id=self.site_id,
            samples=[
                TelemetrySample(
                    equipment_id="env-1", point="temperature", value=value, unit="degC", ts=now
                )
            ],
        )
        self._send(self._telemetry, self._telemetry_seq, Channel.TELEMETRY, encode(message))

    def heartbeat(self) -> None:
        """Publish a heartbeat with the pending counts."""
        hb = HeartbeatMessage(
            agent_id=self.agent_id,
            stream_id=self.stream_id,
            seq=self._event_seq,
            ts=self._clock.now(),
            clock_synced=True,
            site_id=self.site_id,
            boot=self.boot,
            config_hash="sha256:fleet",
            outbox=OutboxHealth(
                events_pending=len(self._events), telemetry_pending=len(self._telemetry)
            ),
        )
        if self.connected:
            self.client.publish(agent_topic(self.agent_id, Channel.HEARTBEAT), encode(hb), qos=1)

    @property
    def events_committed(self) -> int:
        """The last event seq this agent produced (its gapless stream runs 1..this)."""
        return self._event_seq

    @property
    def pending(self) -> int:
        """Messages not yet acked by the collector."""
        return len(self._events) + len(self._telemetry)

    def _send(self, store: dict[int, _Pending], seq: int, channel: Channel, payload: bytes) -> None:
        now = self._clock.monotonic()
        topic = agent_topic(self.agent_id, channel)
        store[seq] = _Pending(payload=payload, topic=topic, created_mono=now, sent_mono=now)
        self._stats.offered += 1
        if self.connected:
            self.client.publish(topic, payload, qos=1)

    def resend(self, *, older_than_s: float) -> None:
        """Re-publish everything unacked sent more than ``older_than_s`` ago."""
        if not self.connected:
            return
        now = self._clock.monotonic()
        for store in (self._events, self._telemetry):
            for pending in store.values():
                if now - pending.sent_mono >= older_than_s:
                    pending.sent_mono = now
                    self._stats.resent += 1
                    self.client.publish(pending.topic, pending.payload, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = AckMessage.model_validate_json(msg.payload)
        except ValidationError:
            log.warning("agent %s: malformed ack ignored", self.agent_id)
            return
        if ack.stream_id != self.stream_id:
            return
        now = self._clock.monotonic()
        for seq in [s for s in self._events if s <= ack.events_through]:
            self._acked(self._events.pop(seq), now)
        for rng in ack.telemetry:
            for seq in [s for s in self._telemetry if rng.first <= s <= rng.last]:
                self._acked(self._telemetry.pop(seq), now)

    def _acked(self, pending: _Pending, now: float) -> None:
        self._stats.acked += 1
        self._stats.lags_s.append(now - pending.created_mono)
