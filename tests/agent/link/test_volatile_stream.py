"""While the outbox cannot write, its events go out on the volatile stream: published at once,
re-sent until the collector acknowledges them on that stream, and an ack of the volatile
stream is checked like any other (a real mosquitto, a tmpfs filled for real, root needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.buffer import Outbox
from agent.link import AgentLink, FixedStatus
from clocks import ManualClock
from simulators.storage import TmpfsVolume
from siteconfig import LinkSettings, OutboxSettings
from tests.agent.link.test_link_acker import AGENT, Collector, _alarm, _until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


async def test_volatile_events_are_sent_resent_and_acked_on_their_own_stream(
    broker: Any, tmp_path: Path, clock: ManualClock
) -> None:
    with TmpfsVolume(tmp_path / "data", size_mib=8) as volume:
        outbox = Outbox.open(
            settings=OutboxSettings(path=volume.mountpoint / "outbox.db", min_free_mib=0),
            agent_id=AGENT,
            site_id="S1",
            clock=clock,
        )
        collector = Collector(broker.host, broker.port)
        link = AgentLink(
            settings=LinkSettings(port=broker.port, resend_after_s=30, reconnect_max_s=1),
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
            async with link:
                await _until(lambda: link.connected, "connect")
                volume.fill()
                outbox.append_alarm(_alarm(clock, 1), clock_synced=True)
                link.wake()
                volatile = outbox.volatile_stream_id

                def on_volatile() -> list[int]:
                    return [e["seq"] for e in collector.events if e["stream_id"] == volatile]

                await _until(lambda: on_volatile() == [1, 2], "the kept events")
                assert [e.get("alarm_type") for e in collector.events] == [
                    "storage_fault",
                    "door_open",
                ]
                # Not acknowledged in time: sent again, like the outbox's own events.
                clock.advance(seconds=31)
                link.wake()
                await _until(lambda: on_volatile() == [1, 2, 1, 2], "the re-send")

                # An ack beyond what was published is refused, and deletes nothing.
                collector.ack(volatile, 5, clock)
                await _until(lambda: link.state.acks_rejected == 1, "the refusal")
                assert outbox.health().volatile_pending == 2
                collector.ack(volatile, 2, clock)
                await _until(lambda: outbox.health().volatile_pending == 0, "the ack")
                assert link.inflight == 0
        finally:
            collector.close()
            outbox.close()
