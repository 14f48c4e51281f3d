"""The fleet simulator speaks the real contract through a real mosquitto."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from clocks import SystemClock
from protocol import (
    AckMessage,
    AlarmEvent,
    BirthMessage,
    Channel,
    DecodeError,
    SeqRange,
    TelemetryMessage,
    agent_topic,
    decode,
    encode,
)
from simulators.broker import MosquittoProcess
from simulators.fleet import Fleet, FleetConfig


class AckingCollector:
    """A minimal collector: validates, records, acks every message (test double of ingest)."""

    def __init__(self, broker: MosquittoProcess, prefix: str) -> None:
        self.events: dict[str, list[int]] = defaultdict(list)
        self.births: dict[str, BirthMessage] = {}
        self.invalid: list[str] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-collector-{prefix}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe("sw/v1/agents/+/+", qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith(("/ack", "/config", "/cmd")):
            return
        try:
            _, message = decode(msg.topic, bytes(msg.payload))
        except DecodeError as err:
            self.invalid.append(str(err))
            return
        events_through = 0
        telemetry: list[SeqRange] = []
        with self.lock:
            if isinstance(message, BirthMessage):
                self.births[message.agent_id] = message
                return
            if isinstance(message, AlarmEvent):
                seqs = self.events[message.agent_id]
                if message.seq not in seqs:
                    seqs.append(message.seq)
                events_through = len(seqs)
            elif isinstance(message, TelemetryMessage):
                events_through = len(self.events[message.agent_id])
                telemetry = [SeqRange(first=message.seq, last=message.seq)]
            else:
                return
        ack = AckMessage(
            agent_id=message.agent_id,
            stream_id=message.stream_id,
            events_through=events_through,
            telemetry=telemetry,
            collector_id="test",
            ts=datetime.now(UTC),
        )
        client.publish(agent_topic(message.agent_id, Channel.ACK), encode(ack), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def test_fleet_agents_publish_births_gapless_alarms_and_get_acked(
    broker: MosquittoProcess, unique_id: str
) -> None:
    collector = AckingCollector(broker, unique_id)
    try:
        fleet = Fleet(
            FleetConfig(
                host=broker.host,
                port=broker.port,
                agents=40,
                id_prefix=f"f{unique_id[:6]}",
                msgs_per_agent_per_min=120,
                alarm_share=0.5,
                storm_sites=10,
                storm_at_s=0.5,
                storm_window_s=1.0,
            ),
            clock=SystemClock(),
        )
        report = await fleet.run(duration_s=3.0, drain_s=10.0)
    finally:
        collector.close()

    assert report.agents_connected == 40
    assert collector.invalid == []
    assert len(collector.births) == 40
    assert report.pending == 0
    assert report.acked == report.offered
    assert report.offered_alarms >= 50  # 10 storm sites x 5 alarms at least
    for seqs in collector.events.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
