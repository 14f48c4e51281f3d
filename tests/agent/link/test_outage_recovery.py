"""A long link outage: 100,000 telemetry samples and 1,000 alarms buffered, then all delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent.buffer import Outbox
from agent.events import AlarmTransition, Sample
from agent.link import AgentLink, FixedStatus
from clocks import SystemClock
from collector.storage import make_session_factory
from collector.telemetry.service import sample_count
from protocol import Severity, Transition
from simulators.stack import Stack
from siteconfig import LinkSettings, OutboxSettings

# Slow on a loaded 2-core machine (a drain of thousands of messages): its own time budget.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SAMPLES = 100_000
ALARMS = 1_000
BATCH = 50


@pytest.fixture
def collector_only(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "stack")
    stack.broker.start()
    stack.noc_token = stack.create_token(name="noc", role="noc")
    stack.enrol(agent_id="outage-agent", site_id="PM-OUTAGE-01")
    stack.start_collector()
    try:
        yield stack
    finally:
        stack.stop()


def _fill(outbox: Outbox, *, max_mib: float) -> None:
    now = datetime.now(UTC)
    sample = Sample(equipment_id="env-1", point="temperature", value=21.5, unit="degC", ts=now)
    per_alarm = SAMPLES // ALARMS
    for i in range(ALARMS):
        for _ in range(per_alarm // BATCH):
            outbox.append_samples([sample] * BATCH, clock_synced=True)
        outbox.flush()
        outbox.append_alarm(
            AlarmTransition(
                equipment_id="door-main",
                point="contact",
                alarm_type="door_open",
                transition=Transition.RAISED if i % 2 == 0 else Transition.CLEARED,
                severity=Severity.MAJOR,
                value=i % 2 == 0,
                reason="outage test",
                ts=now,
            ),
            clock_synced=True,
        )


@pytest.mark.parametrize("max_mib", [256.0, 4.0], ids=["roomy", "thinning"])
async def test_backlog_after_outage_is_delivered_alarms_first_and_thinning_reported(
    collector_only: Stack, tmp_path: Path, max_mib: float
) -> None:
    stack = collector_only
    clock = SystemClock()
    outbox = Outbox.open(
        settings=OutboxSettings(path=tmp_path / "outbox.db", max_mib=max_mib, alarm_reserve=2000),
        agent_id="outage-agent",
        site_id="PM-OUTAGE-01",
        clock=clock,
    )
    # The outage: everything accumulates with no broker connection at all.
    _fill(outbox, max_mib=max_mib)
    health = outbox.health()
    assert health.events_pending >= ALARMS
    thinned = health.thinned_total
    if max_mib < 10:
        assert thinned > 0
    committed = outbox.high_water_event_seq()

    link = AgentLink(
        settings=LinkSettings(port=stack.broker.port, inflight_window=500, resend_after_s=5),
        outbox=outbox,
        agent_id="outage-agent",
        site_id="PM-OUTAGE-01",
        boot=1,
        agent_version="test",
        status=FixedStatus(),
        clock=clock,
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )
    telemetry_at_start = outbox.health().telemetry_pending
    telemetry_when_alarms_done: int | None = None
    async with link:
        for _ in range(3000):
            h = outbox.health()
            if h.events_pending == 0 and telemetry_when_alarms_done is None:
                telemetry_when_alarms_done = h.telemetry_pending
            if h.events_pending == 0 and h.telemetry_pending == 0:
                break
            await asyncio.sleep(0.05)
    # Alarms drain first: most of the telemetry backlog was still waiting when they were done.
    assert telemetry_when_alarms_done is not None
    assert telemetry_when_alarms_done >= telemetry_at_start // 2
    assert outbox.health().events_pending == 0
    assert outbox.health().telemetry_pending == 0
    stream = outbox.stream_id
    outbox.close()

    engine = sa.create_engine(stack.db_url)
    with engine.connect() as db:
        seqs = [
            r[0]
            for r in db.execute(
                sa.text("SELECT seq FROM inbound_events WHERE stream_id=:s ORDER BY seq"),
                {"s": stream},
            )
        ]
        thinning_reported = db.execute(
            sa.text(
                "SELECT COUNT(*) FROM inbound_events WHERE stream_id=:s AND kind='state'"
                " AND payload LIKE '%telemetry_thinned%'"
            ),
            {"s": stream},
        ).scalar_one()
    with make_session_factory(engine)() as session:
        samples = sample_count(session)
    engine.dispose()
    assert seqs == list(range(1, committed + 1))  # every event, once, gapless
    assert (thinning_reported > 0) == (thinned > 0)
    assert samples == SAMPLES - thinned * BATCH
