"""The link against a real mosquitto and a plain paho subscriber acting as the collector."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import Outbox
from agent.events import AlarmTransition
from agent.link import AgentLink, FixedStatus
from clocks import ManualClock
from protocol import (
    AckMessage,
    Channel,
    Severity,
    Transition,
    agent_topic,
    encode,
)
from siteconfig import LinkSettings, OutboxSettings

AGENT = "acker-agent"


class Collector:
    """A minimal collector: records what arrives; acks only when told to."""

    def __init__(self, host: str, port: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.births: list[dict[str, Any]] = []
        self.connects = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_a: Any) -> None:
        self.connects += 1
        client.subscribe(agent_topic(AGENT, Channel.EVENTS), qos=1)
        client.subscribe(agent_topic(AGENT, Channel.STATUS), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self._lock:
            (self.births if msg.topic.endswith("/status") else self.events).append(body)

    def seqs(self) -> list[int]:
        with self._lock:
            return [e["seq"] for e in self.events]

    def raw(self, channel: Channel, payload: bytes) -> None:
        self.client.publish(agent_topic(AGENT, channel), payload, qos=1).wait_for_publish(5)

    def ack(self, stream_id: str, through: int, clock: ManualClock) -> None:
        ack = AckMessage(
            agent_id=AGENT,
            stream_id=stream_id,
            events_through=through,
            collector_id="test",
            ts=clock.now(),
        )
        self.raw(Channel.ACK, encode(ack))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def _until(cond: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alarm(clock: ManualClock, n: int) -> AlarmTransition:
    return AlarmTransition(
        equipment_id="door-main",
        point=f"contact{n}",
        alarm_type="door_open",
        transition=Transition.RAISED,
        severity=Severity.MAJOR,
        value=True,
        reason="door opened",
        ts=clock.now(),
    )


async def test_events_in_order_resent_until_acked_and_garbage_ignored(
    broker: Any, tmp_path: Path, clock: ManualClock
) -> None:
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db"),
        agent_id=AGENT,
        site_id="S1",
        clock=clock,
    )
    configs: list[object] = []
    collector = Collector(broker.host, broker.port)
    link = AgentLink(
        settings=LinkSettings(port=broker.port, resend_after_s=30, reconnect_max_s=1),
        outbox=outbox,
        agent_id=AGENT,
        site_id="S1",
        boot=3,
        agent_version="test",
        status=FixedStatus(),
        clock=clock,
        on_config=configs.append,
        on_command=configs.append,
    )
    try:
        async with link:
            await _until(lambda: link.connected, "connect")
            await _until(lambda: bool(collector.births), "birth")
            assert collector.births[0]["kind"] == "birth" and collector.births[0]["boot"] == 3
            for n in range(5):
                outbox.append_alarm(_alarm(clock, n), clock_synced=True)
            link.wake()
            await _until(lambda: collector.seqs() == [1, 2, 3, 4, 5], "events in order")

            # Garbage on every inbound channel is logged and ignored; the link keeps working.
            for channel in (Channel.ACK, Channel.CONFIG, Channel.CMD):
                collector.raw(channel, b"{not json")
                collector.raw(channel, b'{"kind": "ack", "v": 1}')
            await asyncio.sleep(0.3)
            assert link.connected and configs == []
            assert outbox.health().events_pending == 5  # nothing deleted without an ack

            # Not acked in time: offered again.
            clock.advance(seconds=31)
            link.wake()
            await _until(lambda: len(collector.seqs()) >= 10, "re-send")
            assert collector.seqs()[5:10] == [1, 2, 3, 4, 5]

            # An ack of another stream deletes nothing; a real one deletes through its seq.
            collector.ack("f" * 32, 5, clock)
            collector.ack(outbox.stream_id, 3, clock)
            await _until(lambda: outbox.health().events_pending == 2, "partial ack")

            # Broker restart: the rest and new alarms are delivered after reconnect.
            broker.restart()
            outbox.append_alarm(_alarm(clock, 9), clock_synced=True)
            await _until(lambda: collector.connects == 2, "collector back", within_s=20)
            await _until(lambda: link.connected, "agent back", within_s=20)
            # The plain acker has no persistent session, so what the agent re-published
            # before it re-subscribed is gone; the re-send timer covers that.
            clock.advance(seconds=31)
            link.wake()
            await _until(lambda: 6 in collector.seqs(), "delivery after restart", within_s=20)
            assert outbox.health().events_pending == 3
            collector.ack(outbox.stream_id, 6, clock)
            await _until(lambda: outbox.health().events_pending == 0, "final ack")
    finally:
        collector.close()
        outbox.close()
