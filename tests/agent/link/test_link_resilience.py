"""The link's rate cap and its supervisor, against a real mosquitto."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.buffer import Outbox
from agent.link import AgentLink, FixedStatus
from clocks import ManualClock, SystemClock
from simulators.broker import MosquittoProcess
from siteconfig import LinkSettings, OutboxSettings
from tests.agent.link.test_link_acker import AGENT, Collector, _alarm, _until


@pytest.fixture
async def parts(
    broker: MosquittoProcess, tmp_path: Path
) -> AsyncIterator[tuple[Outbox, Collector]]:
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db"),
        agent_id=AGENT,
        site_id="PM-RES-01",
        clock=SystemClock(),
    )
    collector = Collector(broker.host, broker.port)
    yield outbox, collector
    collector.close()
    outbox.close()


def _link(broker: MosquittoProcess, outbox: Outbox, **settings: Any) -> AgentLink:
    return AgentLink(
        settings=LinkSettings(port=broker.port, **settings),
        outbox=outbox,
        agent_id=AGENT,
        site_id="PM-RES-01",
        boot=1,
        agent_version="t",
        status=FixedStatus(),
        clock=SystemClock(),
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )


async def test_the_rate_cap_paces_a_backlog(
    broker: MosquittoProcess, parts: tuple[Outbox, Collector]
) -> None:
    outbox, collector = parts
    clock = ManualClock()
    for n in range(40):
        outbox.append_alarm(_alarm(clock, n), clock_synced=True)
    async with _link(broker, outbox, max_rate_per_s=40.0) as link:
        await _until(lambda: link.connected, "connection")
        start = time.monotonic()
        await _until(lambda: len(collector.seqs()) >= 40, "the backlog", within_s=10)
        elapsed = time.monotonic() - start
    assert collector.seqs()[:40] == list(range(1, 41))
    assert elapsed >= 0.8  # 40 messages at 40/s take about a second, never a burst


async def test_the_supervisor_restarts_a_dead_network_loop(
    broker: MosquittoProcess, parts: tuple[Outbox, Collector]
) -> None:
    outbox, collector = parts
    clock = ManualClock()
    async with _link(broker, outbox) as link:
        await _until(lambda: link.connected, "connection")
        first_thread = link._thread

        def broken(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("simulated paho bug")

        link._client.loop = broken  # type: ignore[method-assign]
        await _until(lambda: link._thread is not first_thread, "a new network thread")
        await _until(lambda: link.connected, "reconnection")
        outbox.append_alarm(_alarm(clock, 1), clock_synced=True)
        link.wake()
        await _until(lambda: 1 in collector.seqs(), "the alarm after the restart")


async def test_stopping_as_a_wake_up_lands_does_not_hang(
    broker: MosquittoProcess, parts: tuple[Outbox, Collector]
) -> None:
    # On Python 3.11 asyncio.wait_for swallowed a cancellation that arrived together with the
    # wake-up it waited for: the sender went on and the link never stopped (seen in CI, with
    # acks waking the sender while the test left the link).
    outbox, _collector = parts
    for _ in range(3):
        link = _link(broker, outbox)
        await link.__aenter__()
        await _until(lambda link=link: link.connected, "connection")
        link.wake()
        stop = asyncio.ensure_future(link.__aexit__(None, None, None))
        await asyncio.wait({stop}, timeout=10)  # a guard against a hang, not a speed target
        assert stop.done(), "the link did not stop"
