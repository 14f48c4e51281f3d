"""The link on a bad backhaul: a real mosquitto reached through the test's relay, which holds,
cuts or slows the agent's traffic; a spy subscriber counts what the broker delivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.buffer import Outbox
from agent.events import Sample
from agent.link import AgentLink, FixedStatus
from clocks import Clock, ManualClock, SystemClock
from simulators.broker import MosquittoProcess
from simulators.network import DeliverySpy, LinkRelay
from siteconfig import LinkSettings, OutboxSettings
from tests.agent.link.test_link_acker import _alarm, _until
from tests.conftest import budget

AGENT = "badlink-agent"
SITE = "PM-BAD-01"


@pytest.fixture
def relay(broker: MosquittoProcess) -> Iterator[LinkRelay]:
    with LinkRelay(target=(broker.host, broker.port)) as proxy:
        yield proxy


@pytest.fixture
def spy(broker: MosquittoProcess) -> Iterator[DeliverySpy]:
    watcher = DeliverySpy(broker.host, broker.port, AGENT)
    yield watcher
    watcher.forget_collector("c2")
    watcher.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db"),
        agent_id=AGENT,
        site_id=SITE,
        clock=SystemClock(),
    )
    yield box
    box.close()


def _link(relay: LinkRelay, outbox: Outbox, clock: Clock, **settings: Any) -> AgentLink:
    return AgentLink(
        settings=LinkSettings(
            host=relay.host,
            port=relay.port,
            reconnect_min_s=0.2,
            reconnect_max_s=0.5,
            heartbeat_s=3600,
            **settings,
        ),
        outbox=outbox,
        agent_id=AGENT,
        site_id=SITE,
        boot=1,
        agent_version="t",
        status=FixedStatus(),
        clock=clock,
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )


def _alarms(outbox: Outbox, link: AgentLink, clock: ManualClock, seqs: range) -> None:
    for n in seqs:
        outbox.append_alarm(_alarm(clock, n), clock_synced=True)
    link.wake()


async def test_after_a_reconnect_each_unacked_event_goes_out_once_more(
    relay: LinkRelay, spy: DeliverySpy, outbox: Outbox
) -> None:
    clock = ManualClock()
    async with _link(relay, outbox, SystemClock()) as link:
        await _until(lambda: link.connected, "connection")
        _alarms(outbox, link, clock, range(1, 6))
        await _until(lambda: len(spy.event_copies()) == 5, "events 1-5 at the broker")

        # Published into a dead uplink, then the connection is reset: 6-10 never got there.
        relay.set_link(up=False)
        _alarms(outbox, link, clock, range(6, 11))
        await _until(lambda: link.state.published == 10, "events 6-10 handed to the socket")
        connects = link.state.connects
        relay.cut()
        relay.set_link()
        await _until(lambda: link.state.connects > connects, "reconnection")
        await _until(lambda: set(spy.event_copies()) == set(range(1, 11)), "events 6-10")

        # A collector coming online makes the agent re-send what the broker has but the
        # collector never acked (1-10) - not what is still on its way (11-12).
        relay.set_link(up=False)
        published = link.state.published
        _alarms(outbox, link, clock, range(11, 13))
        await _until(lambda: link.state.published == published + 2, "11-12 handed to the socket")
        spy.collector_status("c2", online=True)
        await _until(lambda: link.state.published >= published + 12, "the collector's re-send")
        relay.set_link()
        await _until(lambda: 12 in spy.event_copies(), "events 11-12")
        await asyncio.sleep(1.0)  # room for any further copy to arrive

    copies = spy.event_copies()
    # 1-5: sent, re-sent after the reconnect, re-sent for the collector: three copies.
    # 6-10: lost in the cut, sent once by the reconnect, re-sent for the collector: two.
    # 11-12: delivered once paho could; nothing else sent them.
    assert copies == {
        **dict.fromkeys(range(1, 6), 3),
        **dict.fromkeys(range(6, 11), 2),
        11: 1,
        12: 1,
    }


async def test_a_half_open_link_is_dropped_once_the_broker_is_silent_for_the_answer_timeout(
    relay: LinkRelay, spy: DeliverySpy, outbox: Outbox
) -> None:
    clock = ManualClock()
    async with _link(relay, outbox, clock, answer_timeout_s=15) as link:
        await _until(lambda: link.connected, "connection")
        relay.partition()
        _alarms(outbox, link, clock, range(1, 2))
        await _until(lambda: link.state.published == 1, "the alarm handed to the socket")

        clock.advance(seconds=14)
        await asyncio.sleep(0.6)
        assert link.connected and relay.connections[0].client_closed_at is None

        clock.advance(seconds=1)
        await _until(lambda: relay.connections[0].client_closed_at is not None, "the drop")
        assert not link.connected

        # A reconnection into the black hole gets no CONNACK: given up after the same timeout.
        await _until(lambda: link._wire.connect_pending, "a reconnection attempt")
        clock.advance(seconds=15)
        await _until(lambda: relay.connections[1].client_closed_at is not None, "its drop")

        relay.heal()
        await _until(lambda: link.connected, "reconnection after the partition", within_s=15)
        await _until(lambda: 1 in spy.event_copies(), "the alarm")
        await asyncio.sleep(1.0)  # room for any further copy to arrive
        reconnects = link.state.connects - 1
    # Once per connection at most: the copy held in the black hole reaches the broker when it
    # heals (as TCP would retransmit it), paho's re-send on the new connection is the other.
    assert reconnects == 1
    assert spy.event_copies()[1] <= 1 + reconnects


async def test_a_link_dying_while_an_event_awaits_its_ack_is_probed_and_dropped(
    relay: LinkRelay, spy: DeliverySpy, outbox: Outbox
) -> None:
    clock = ManualClock()
    async with _link(relay, outbox, clock, answer_timeout_s=10) as link:
        await _until(lambda: link.connected, "connection")
        spy.collector_status("c2", online=True)
        await _until(lambda: link.collector_up, "the collector seen online")
        _alarms(outbox, link, clock, range(1, 2))
        await _until(lambda: 1 in spy.event_copies(), "the alarm at the broker")
        relay.partition()  # the collector's ack will never come back
        sent = relay.connections[0].client_sent

        clock.advance(seconds=5)  # half the timeout without a word: a heartbeat probes
        await _until(lambda: relay.connections[0].client_sent > sent, "the probe")
        clock.advance(seconds=10)
        await _until(lambda: relay.connections[0].client_closed_at is not None, "the drop")


async def test_alarms_do_not_wait_behind_telemetry_on_a_64_kbit_link(
    relay: LinkRelay, spy: DeliverySpy, outbox: Outbox
) -> None:
    now = datetime.now(UTC)
    samples = [
        Sample(equipment_id="env-1", point=f"p{i}", value=21.5, unit="degC", ts=now)
        for i in range(10)
    ]
    for _ in range(400):  # ~1.2 kB each: a minute of the link's time
        outbox.append_samples(samples, clock_synced=True)
        outbox.flush()
    spy.auto_ack = True
    relay.set_link(rate_bytes_s=8000)
    clock = ManualClock()
    raised: dict[int, float] = {}
    alarms = budget(short=5, long=40)
    async with _link(relay, outbox, SystemClock()) as link:
        await _until(lambda: link.connected, "connection")
        await asyncio.sleep(1.0)  # the link is saturated by the telemetry backlog
        for n in range(1, alarms + 1):
            raised[n] = time.monotonic()
            _alarms(outbox, link, clock, range(n, n + 1))
            await asyncio.sleep(0.4)
        await _until(lambda: len(spy.event_copies()) == alarms, "every alarm", within_s=120)
        backlog_left = outbox.health().telemetry_pending
    latencies = sorted(spy.arrived[("event", n)] - at for n, at in raised.items())
    assert latencies[-1] <= 3.0, latencies
    assert backlog_left > 0, "the telemetry backlog must saturate the link the whole time"
