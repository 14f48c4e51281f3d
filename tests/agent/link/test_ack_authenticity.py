"""Forged acks on a broker without ACL: the agent keeps its events, counts the forgeries, and
still honours the collector's signed acks."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.buffer import Outbox
from agent.events import AlarmTransition, Sample
from agent.link import AgentLink, FixedStatus
from clocks import ManualClock
from protocol import AckMessage, Channel, SeqRange, Severity, Transition, agent_topic, encode
from protocol.acksig import derive_ack_key, sign_ack
from simulators.broker import MosquittoProcess
from simulators.stack import AgentProcess, Stack
from siteconfig import LinkSettings, OutboxSettings
from tests.conftest import wait_for

FAST_SITE = Path(__file__).resolve().parents[2] / "e2e" / "fixtures" / "fast-site.yaml"
SECRET = bytes.fromhex("5a" * 32)

pytestmark = pytest.mark.mqtt


def _ack(
    *,
    agent_id: str,
    stream_id: str,
    through: int,
    telemetry: list[tuple[int, int]] | None = None,
    key: bytes | None,
    ts: datetime | None = None,
) -> bytes:
    """An ack as a forger (or the test's collector) would publish it; signed when given a key."""
    ranges = telemetry or []
    when = ts or datetime.now(UTC)
    sig = None
    if key is not None:
        sig = sign_ack(
            key,
            agent_id=agent_id,
            stream_id=stream_id,
            events_through=through,
            telemetry=ranges,
            collector_id="forger",
            ts=when,
        )
    return encode(
        AckMessage(
            agent_id=agent_id,
            stream_id=stream_id,
            events_through=through,
            telemetry=[SeqRange(first=a, last=b) for a, b in ranges],
            collector_id="forger",
            ts=when,
            sig=sig,
        )
    )


class Watcher:
    """Anyone on a broker without ACL: hears an agent's events and heartbeats, publishes acks."""

    def __init__(self, broker: MosquittoProcess, agent_id: str) -> None:
        self.agent_id = agent_id
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.heartbeats: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(
            [
                (agent_topic(agent_id, Channel.EVENTS), 1),
                (agent_topic(agent_id, Channel.HEARTBEAT), 1),
            ]
        )
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        (self.heartbeats if body["kind"] == "heartbeat" else self.events).put(body)

    def publish_ack(self, payload: bytes) -> None:
        info = self.client.publish(agent_topic(self.agent_id, Channel.ACK), payload, qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _check_json(agent: AgentProcess) -> dict[str, Any]:
    """What ``shelterwatch agent check --json`` shows a technician."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "check", "--config", str(agent.site_file), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(done.stdout) if done.stdout else {}


def _drain(q: queue.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


@pytest.fixture
def signed_stack(tmp_path: Path) -> Iterator[Stack]:
    """Broker (no ACL) and a collector that signs its acks, the collector not started yet."""
    stack = Stack(tmp_path / "stack", ack_secret=SECRET)
    stack.broker.start()
    stack.noc_token = stack.create_token(name="noc", role="noc")
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.slow
def test_forged_acks_leave_the_events_in_the_outbox_until_the_collector_signs_for_them(
    signed_stack: Stack,
) -> None:
    stack = signed_stack
    agent = stack.add_agent(FAST_SITE)
    stack.wait_for_gpio(agent.agent_id)
    watcher = Watcher(stack.broker, agent.agent_id)
    try:
        stack.set_contact(agent.agent_id, "door", alarm=True)
        first = watcher.events.get(timeout=30)
        stream, seq = first["stream_id"], first["seq"]
        key = derive_ack_key(SECRET, agent.agent_id)
        forgeries = {
            "a key from another secret": _ack(
                agent_id=agent.agent_id,
                stream_id=stream,
                through=seq,
                key=derive_ack_key(os.urandom(32), agent.agent_id),
            ),
            "no signature": _ack(agent_id=agent.agent_id, stream_id=stream, through=seq, key=None),
            "another stream": _ack(
                agent_id=agent.agent_id, stream_id="0" * 32, through=seq, key=key
            ),
            "seqs never published": _ack(
                agent_id=agent.agent_id, stream_id=stream, through=seq + 5, key=key
            ),
        }
        for payload in forgeries.values():
            watcher.publish_ack(payload)
        hb = wait_for(
            "a heartbeat counting the forged acks",
            lambda: [h for h in _drain(watcher.heartbeats) if h["acks_rejected"] == 4],
        )
        assert hb[0]["outbox"]["events_pending"] == 1
        status = _check_json(agent)
        assert status["acks_rejected"] == 4 and status["outbox"]["events_pending"] == 1
        # Still unacked, so still offered: the re-send after resend_after_s (2 s here).
        again = wait_for(
            "the event re-sent", lambda: [e for e in _drain(watcher.events) if e["seq"] == seq]
        )
        assert again[0]["stream_id"] == stream

        stack.start_collector()
        stack.wait_ready()
        wait_for(
            "the collector's signed ack honoured",
            lambda: _check_json(agent).get("outbox", {}).get("events_pending") == 0,
        )
        alarms = stack.api("GET", "/api/v1/alarms?state=open&site_id=PM-TEST-0001").json()
        assert [a["alarm_type"] for a in alarms["items"]] == ["door_open"]
        assert _check_json(agent)["acks_rejected"] == 4  # the genuine ones were not refused
    finally:
        watcher.close()
    log = agent.process.tail(200_000)
    # Rate-limited: the four forgeries came within a minute, so one line says so.
    assert log.count("ignored:") == 1 and "ACKS ARE NOT AUTHENTICATED" not in log


# -- the link in process, one refusal at a time -------------------------------------------

AGENT = "ack-auth-agent"


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


KEY = derive_ack_key(SECRET, AGENT)
# (what the forger gets wrong, the ack's fields other than agent and stream, its key)
REFUSED: list[tuple[str, dict[str, Any], bytes | None]] = [
    ("wrong key", {"through": 2}, derive_ack_key(SECRET, "another-agent")),
    ("no signature", {"through": 2}, None),
    ("events never published", {"through": 3}, KEY),
    ("telemetry never published", {"through": 0, "telemetry": [(1, 1)]}, KEY),
]


@pytest.mark.parametrize(("_what", "fields", "key"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_the_link_refuses_an_ack_it_cannot_trust_and_honours_a_signed_one(
    broker: MosquittoProcess,
    tmp_path: Path,
    clock: ManualClock,
    _what: str,
    fields: dict[str, Any],
    key: bytes | None,
) -> None:
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db"),
        agent_id=AGENT,
        site_id="S1",
        clock=clock,
    )
    watcher = Watcher(broker, AGENT)
    link = AgentLink(
        # A window of two: the two events fill it, so the telemetry stored next waits unsent.
        settings=LinkSettings(
            port=broker.port, heartbeat_s=0.2, reconnect_max_s=1, inflight_window=2
        ),
        outbox=outbox,
        agent_id=AGENT,
        site_id="S1",
        boot=1,
        agent_version="test",
        status=FixedStatus(),
        clock=clock,
        on_config=lambda _m: None,
        on_command=lambda _m: None,
        ack_key=KEY,
    )
    try:
        async with link:
            await _until(lambda: link.connected, "connect")
            for n in range(2):
                outbox.append_alarm(_alarm(clock, n), clock_synced=True)
            link.wake()
            await _until(lambda: watcher.events.qsize() == 2, "both events published")
            sample = Sample(equipment_id="env", point="t", value=20.0, unit=None, ts=clock.now())
            outbox.append_samples([sample], clock_synced=True)
            outbox.flush()
            watcher.publish_ack(_ack(agent_id=AGENT, stream_id=outbox.stream_id, key=key, **fields))
            await _until(lambda: link.state.acks_rejected == 1, "the ack refused")
            health = outbox.health()
            assert (health.events_pending, health.telemetry_pending) == (2, 1)
            watcher.publish_ack(
                _ack(agent_id=AGENT, stream_id=outbox.stream_id, through=2, key=KEY)
            )
            await _until(lambda: outbox.health().events_pending == 0, "the signed ack honoured")
            assert link.state.acks_rejected == 1
            await _until(
                lambda: any(h["acks_rejected"] == 1 for h in _drain(watcher.heartbeats)),
                "the count in a heartbeat",
            )
    finally:
        watcher.close()
        outbox.close()


async def test_without_a_key_the_agent_says_acks_are_not_authenticated(
    broker: MosquittoProcess,
    tmp_path: Path,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db"),
        agent_id=AGENT,
        site_id="S1",
        clock=clock,
    )
    link = AgentLink(
        settings=LinkSettings(port=broker.port),
        outbox=outbox,
        agent_id=AGENT,
        site_id="S1",
        boot=1,
        agent_version="test",
        status=FixedStatus(),
        clock=clock,
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )
    try:
        with caplog.at_level(logging.WARNING, logger="agent.link.link"):
            async with link:
                await _until(lambda: link.connected, "connect")
    finally:
        outbox.close()
    assert any("ACKS ARE NOT AUTHENTICATED" in r.getMessage() for r in caplog.records)
