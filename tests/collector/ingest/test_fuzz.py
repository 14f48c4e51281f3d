"""Fuzz: malformed payloads through mosquitto while valid traffic flows. The collector stays up,
every bad message is dead-lettered, every valid one is processed."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.buffer import Outbox
from agent.events import AlarmTransition
from agent.link import AgentLink, FixedStatus
from clocks import SystemClock
from protocol import Severity, Transition
from simulators.stack import Stack
from siteconfig import LinkSettings, OutboxSettings
from tests.conftest import budget

pytestmark = [pytest.mark.slow, pytest.mark.timeout(budget(short=120, long=900))]

VALID = {
    "v": 1,
    "kind": "alarm",
    "agent_id": "fuzz-target",
    "stream_id": "b" * 32,
    "seq": 1,
    "ts": "2026-01-05T09:00:00Z",
    "clock_synced": True,
    "site_id": "PM-FUZZ",
    "equipment_id": "eq",
    "point": "p",
    "alarm_type": "door_open",
    "transition": "raised",
    "severity": "major",
}


def malformed(rng: random.Random) -> tuple[str, bytes]:
    """One bad message: every way a payload can be wrong."""
    topic = "sw/v1/agents/fuzz-target/events"
    kind = rng.randrange(12)
    if kind == 8:  # once a TypeError that took the whole batch down
        return topic, json.dumps({"v": 1, "kind": rng.choice([[], {}, 1, None])}).encode()
    if kind == 9:  # a depth bomb
        depth = rng.randrange(20, 6_000)
        return topic, b"[" * depth + b"]" * depth
    if kind == 10:  # numbers that are not numbers, values that are not finite
        field, value = rng.choice([("seq", '"1"'), ("seq", "true"), ("value", "NaN")])
        body = json.dumps({**VALID, field: "@"}).replace('"@"', value)
        return topic, body.encode()
    if kind == 11:  # valid, for another site than the agent's own
        return topic, json.dumps({**VALID, "site_id": "PM-VALID"}).encode()
    if kind == 0:
        return topic, rng.randbytes(rng.randrange(1, 300))
    if kind == 1:
        return topic, json.dumps(rng.choice([[], 1, "x", None, [VALID]])).encode()
    if kind == 2:
        return topic, json.dumps({**VALID, "v": rng.choice([0, 2, "1", None])}).encode()
    if kind == 3:
        body = dict(VALID)
        body.pop(rng.choice(list(body)))
        return topic, json.dumps(body).encode()
    if kind == 4:
        field = rng.choice(["seq", "ts", "severity", "transition", "site_id", "stream_id"])
        return topic, json.dumps({**VALID, field: rng.choice([-5, "??", 1e30, [], {}])}).encode()
    if kind == 5:
        return "sw/v1/agents/someone-else/events", json.dumps(VALID).encode()
    if kind == 6:
        return "sw/v1/agents/fuzz-target/telemetry", json.dumps(VALID).encode()
    return topic, b'{"v": 1, "pad": "' + b"x" * 300_000 + b'"}'


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    chain = Stack(tmp_path / "stack")
    chain.broker.start()
    chain.noc_token = chain.create_token(name="noc", role="noc")
    chain.enrol(agent_id="fuzz-target", site_id="PM-FUZZ")
    chain.enrol(agent_id="fuzz-valid", site_id="PM-VALID")
    chain.start_collector()
    chain.wait_ready()  # the garbage is published once: the subscription must exist first
    try:
        yield chain
    finally:
        chain.stop()


async def test_garbage_is_dead_lettered_and_valid_traffic_still_flows(
    stack: Stack, tmp_path: Path
) -> None:
    count = budget(short=2000, long=10_000)
    rng = random.Random(7)
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db"),
        agent_id="fuzz-valid",
        site_id="PM-VALID",
        clock=SystemClock(),
    )
    link = AgentLink(
        settings=LinkSettings(port=stack.broker.port),
        outbox=outbox,
        agent_id="fuzz-valid",
        site_id="PM-VALID",
        boot=1,
        agent_version="t",
        status=FixedStatus(),
        clock=SystemClock(),
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )
    fuzzer = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    fuzzer.connect(stack.broker.host, stack.broker.port)
    fuzzer.loop_start()
    # Half the garbage carries an MQTT 5 property: the collector's gateway reads a plain QoS 1
    # PUBLISH itself and leaves anything else to paho, so both ways are fuzzed.
    with_property = Properties(PacketTypes.PUBLISH)
    with_property.UserProperty = [("fuzz", "1")]
    unsubscribed = 0
    async with link:
        for i in range(count):
            topic, payload = malformed(rng)
            if i % 50 == 0:  # nobody subscribes to this: counted apart, never stored
                topic = "sw/v1/agents/fuzz-target/nowhere"
                unsubscribed += 1
            properties = with_property if i % 2 else None
            info = fuzzer.publish(topic, payload, qos=1, properties=properties)
            info.wait_for_publish(5)
            assert info.is_published()
            if i % 20 == 0:
                outbox.append_alarm(
                    AlarmTransition(
                        "eq",
                        "p",
                        "door_open",
                        Transition.RAISED if i % 40 == 0 else Transition.CLEARED,
                        Severity.MAJOR,
                        None,
                        "valid",
                        datetime.now(UTC),
                    ),
                    clock_synced=True,
                )
                link.wake()
        for _ in range(600):
            if outbox.health().events_pending == 0:
                break
            await asyncio.sleep(0.1)
    fuzzer.loop_stop()
    fuzzer.disconnect()
    committed = outbox.high_water_event_seq()
    assert outbox.health().events_pending == 0
    outbox.close()
    assert stack.collector.running
    engine = sa.create_engine(stack.db_url)
    # The garbage came from another client than the valid events: the broker does not order the
    # two, so the last bad payloads may still be on their way when the events are acked.
    dead = 0
    for _ in range(300):
        with engine.connect() as db:
            dead = db.execute(sa.text("SELECT COUNT(*) FROM dead_letters")).scalar_one()
        if dead >= count - unsubscribed:
            break
        await asyncio.sleep(0.1)
    with engine.connect() as db:
        applied = db.execute(
            sa.text("SELECT applied_through FROM streams WHERE agent_id = 'fuzz-valid'")
        ).scalar_one()
        reasons = dict(
            db.execute(sa.text("SELECT reason, total FROM dead_letter_totals")).fetchall()
        )
        misbehaving = db.execute(
            sa.text(
                "SELECT site_id, count FROM alarms WHERE alarm_type = 'agent_misbehaving'"
                " AND state != 'cleared'"
            )
        ).fetchall()
    engine.dispose()
    # Every message is accounted for: dead-lettered, or on a topic nobody subscribes to.
    assert dead + unsubscribed == count
    assert sum(reasons.values()) == dead
    assert applied == committed == count // 20
    # The garbage on fuzz-target's own topic counts on one alarm at its own site; the message
    # naming another agent's topic (kind 5) is someone-else's, who is not enrolled.
    assert [site for site, _n in misbehaving] == ["PM-FUZZ"]
