"""Outbox benchmark: durable alarm commits, group-committed telemetry, memory at 1M rows, drain.

Run: ``.venv/bin/python -m benchmarks.outbox`` (about two minutes). Last line: JSON figures.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from agent.buffer import Outbox
from agent.events import AlarmTransition, Sample
from agent.link import AgentLink, FixedStatus
from benchmarks._machine import print_machine
from clocks import SystemClock
from protocol import (
    Severity,
    TelemetryMessage,
    TelemetrySample,
    Transition,
    encode,
)
from simulators.stack import Stack
from siteconfig import LinkSettings, OutboxSettings

ALARMS = 3000
TELEMETRY_CALLS = 100_000
MEMORY_ROWS = 1_000_000
DRAIN_MESSAGES = 100_000


def _alarm(i: int) -> AlarmTransition:
    return AlarmTransition(
        equipment_id="door-main",
        point="contact",
        alarm_type="door_open",
        transition=Transition.RAISED if i % 2 == 0 else Transition.CLEARED,
        severity=Severity.MAJOR,
        value=i % 2 == 0,
        reason="benchmark",
        ts=datetime.now(UTC),
    )


def _open(path: Path, **kw: float) -> Outbox:
    return Outbox.open(
        settings=OutboxSettings(path=path, **kw),  # type: ignore[arg-type]
        agent_id="bench-agent",
        site_id="PM-BENCH-01",
        clock=SystemClock(),
    )


def bench_alarm_commits(workdir: Path) -> tuple[float, float]:
    """One alarm per fsynced commit: rate and p99 latency in ms."""
    outbox = _open(workdir / "alarms.db")
    latencies = []
    start = time.perf_counter()
    for i in range(ALARMS):
        t0 = time.perf_counter()
        outbox.append_alarm(_alarm(i), clock_synced=True)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    outbox.close()
    latencies.sort()
    return ALARMS / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000


def bench_telemetry(workdir: Path) -> float:
    """Telemetry batches (one row each) group-committed by the outbox: rows per second."""
    outbox = _open(workdir / "telemetry.db", max_mib=1024)
    sample = Sample(
        equipment_id="env-1", point="temperature", value=21.5, unit="degC", ts=datetime.now(UTC)
    )
    start = time.perf_counter()
    for _ in range(TELEMETRY_CALLS):
        outbox.append_samples([sample], clock_synced=True)
    outbox.flush()
    elapsed = time.perf_counter() - start
    outbox.close()
    return TELEMETRY_CALLS / elapsed


_RSS_PROBE = """
import sys
from pathlib import Path
from agent.buffer import Outbox
from siteconfig import OutboxSettings
from benchmarks._machine import rss_mib
from clocks import SystemClock
ob = Outbox.open(settings=OutboxSettings(path=Path(sys.argv[1]), max_mib=4096),
                 agent_id="bench-agent", site_id="PM-BENCH-01", clock=SystemClock())
ob.health(); ob.next_batch(limit=200, exclude=set()); ob.active_alarms()
print(rss_mib())
"""


def _rss_with(path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def bench_memory(workdir: Path) -> float:
    """RSS of a process holding an outbox with 1M telemetry rows, minus with an empty one."""
    empty = workdir / "empty.db"
    _open(empty).close()
    full = workdir / "full.db"
    outbox = _open(full, max_mib=4096)
    now = datetime.now(UTC)
    rows = []
    for seq in range(1, MEMORY_ROWS + 1):
        message = TelemetryMessage(
            agent_id="bench-agent",
            stream_id=outbox.stream_id,
            seq=seq,
            ts=now,
            clock_synced=True,
            site_id="PM-BENCH-01",
            samples=[
                TelemetrySample(equipment_id="env-1", point="t", value=21.5, unit="degC", ts=now)
            ],
        )
        rows.append((seq, encode(message), now.timestamp()))
        if len(rows) == 50_000:
            with outbox._db:
                outbox._db.executemany("INSERT INTO telemetry VALUES (?, ?, ?)", rows)
            rows.clear()
    with outbox._db:
        outbox._db.execute(
            "UPDATE meta SET value = ? WHERE key = 'telemetry_seq'", (str(MEMORY_ROWS),)
        )
    outbox.close()
    return _rss_with(full) - _rss_with(empty)


async def _drain(stack: Stack, outbox: Outbox) -> float:
    link = AgentLink(
        settings=LinkSettings(port=stack.broker.port, inflight_window=1000, resend_after_s=30),
        outbox=outbox,
        agent_id="bench-agent",
        site_id="PM-BENCH-01",
        boot=1,
        agent_version="bench",
        status=FixedStatus(),
        clock=SystemClock(),
        on_config=lambda _m: None,
        on_command=lambda _m: None,
    )
    start = time.perf_counter()
    async with link:
        while True:
            health = outbox.health()
            if health.events_pending == 0 and health.telemetry_pending == 0:
                break
            await asyncio.sleep(0.05)
    return time.perf_counter() - start


def bench_drain(workdir: Path) -> float:
    """A 100,000-message backlog (10 % alarms) through mosquitto into a live collector."""
    outbox = _open(workdir / "drain.db", max_mib=1024)
    sample = Sample(
        equipment_id="env-1", point="temperature", value=21.5, unit="degC", ts=datetime.now(UTC)
    )
    # Bulk fill without an fsync per alarm: only the drain is measured here.
    outbox._db.execute("PRAGMA synchronous=OFF")
    for i in range(DRAIN_MESSAGES):
        if i % 10 == 0:
            outbox.append_alarm(_alarm(i // 10), clock_synced=True)
        else:
            outbox.append_samples([sample], clock_synced=True)
    outbox.flush()
    outbox._db.execute("PRAGMA synchronous=FULL")
    stack = Stack(workdir / "stack")
    stack.broker.start()
    stack.noc_token = stack.create_token(name="bench", role="noc")
    stack.enrol(agent_id="bench-agent", site_id="PM-BENCH-01")
    stack.start_collector()
    try:
        elapsed = asyncio.run(_drain(stack, outbox))
    finally:
        stack.stop()
        outbox.close()
    return DRAIN_MESSAGES / elapsed


def main() -> None:
    """Run every measurement and print the JSON line."""
    print_machine()
    with tempfile.TemporaryDirectory(prefix="sw-bench-outbox-") as tmp:
        workdir = Path(tmp)
        alarm_rate, alarm_p99 = bench_alarm_commits(workdir)
        print(f"alarm commits: {alarm_rate:.0f}/s, p99 {alarm_p99:.2f} ms", flush=True)
        telemetry_rate = bench_telemetry(workdir)
        print(f"telemetry rows: {telemetry_rate:.0f}/s", flush=True)
        rss_growth = bench_memory(workdir)
        print(f"RSS growth with 1M rows buffered: {rss_growth:.1f} MiB", flush=True)
        drain_rate = bench_drain(workdir)
        print(f"drain through mosquitto into the collector: {drain_rate:.0f} msg/s", flush=True)
    print(
        json.dumps(
            {
                "alarm_commits_per_s": round(alarm_rate),
                "alarm_commit_p99_ms": round(alarm_p99, 3),
                "telemetry_rows_per_s": round(telemetry_rate),
                "rss_growth_mib_at_1m_rows": round(rss_growth, 1),
                "drain_msgs_per_s": round(drain_rate),
                "drain_messages": DRAIN_MESSAGES,
            }
        )
    )


if __name__ == "__main__":
    main()
