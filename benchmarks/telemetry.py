"""Telemetry storage benchmark: write rate, size on disk in steady state, series queries,
pruning a day.

Run: ``.venv/bin/python -m benchmarks.telemetry`` (about six minutes on SQLite; ``--db`` for
another database, e.g. PostgreSQL; ``--help`` for the knobs). The last line is one JSON object.

What a national fleet asks of the collector's telemetry tables, measured on a slice of it and
extrapolated (the extrapolation is arithmetic, printed as such):

1. write and tend: ``--sites`` sites report ``--points`` points every ``--interval-s`` for
   ``--hours`` simulated hours (by default the fleet's shape: 10 points every 5 minutes, 24
   hours), as the real contract's telemetry messages (one per site and interval, sample times
   up to a second late) through the collector's own batch store, at most 2,000 messages a
   transaction; the scheduler's telemetry job (packing, roll-up, pruning) runs every 5
   simulated minutes, as the collector runs it. ``write_samples_per_s`` counts the store's
   time only, ``scheduler_job_s`` the job's;
2. size in that steady state: every telemetry table with its indexes (PostgreSQL:
   ``pg_total_relation_size`` of each table and partition, after a plain VACUUM as autovacuum
   runs it; SQLite: the whole file, and each table's pages from ``dbstat``), over the samples
   written: ``bytes_per_sample``, and ``bytes_by_table``;
3. queries: the equipment page's series, raw over the whole slice and hourly, for random
   series (p50 and p99);
4. prune: the slice (one day) past its retention, raw samples and dedup keys.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from benchmarks._machine import print_machine
from collector.ingest.store import BatchStore, Received
from collector.listeners import alarm_engine
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from collector.telemetry.service import rollup_and_prune, sample_count, series
from protocol import decode
from simulators.stack import enrol_in

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
BATCH = 2_000
QUERIES = 200
# The scheduler runs the telemetry job (roll-up, pruning) every 5 minutes.
JOB_EVERY_S = 300
# The fleet the extrapolation is for: sites, points each, one sample each every 5 minutes.
FLEET_SITES, FLEET_POINTS, FLEET_INTERVAL_S = 21_000, 10, 300


def _jitter_us(*key: int) -> int:
    # The hash of a tuple of ints is the same in every run (only str hashing is randomised).
    return hash(key) % 1_000_000


def _message(site: int, seq: int, at: datetime, points: int) -> Received:
    agent_id = f"tele-{site:05d}"
    body = {
        "v": 1,
        "kind": "telemetry",
        "agent_id": agent_id,
        "stream_id": f"{site:032x}",
        "seq": seq,
        "ts": at.isoformat(),
        "clock_synced": True,
        # What agents send once they have measured their clock against the collector's.
        "clock_offset_s": 0.012,
        "site_id": f"PM-T{site:05d}",
        "samples": [
            {
                "equipment_id": "env-1",
                "point": f"p{p}",
                "value": 20.0 + (seq % 17) * 0.1 + p,
                "unit": "degC",
                # Polls are not on the microsecond: up to a second late (never in the hour before).
                "ts": (at + timedelta(microseconds=_jitter_us(site, seq, p))).isoformat(),
            }
            for p in range(points)
        ],
    }
    return Received(f"sw/v1/agents/{agent_id}/telemetry", json.dumps(body).encode(), at)


def _interval(args: argparse.Namespace, step: int) -> list[Received]:
    at = T0 + timedelta(seconds=step * args.interval_s)
    return [_message(site, step + 1, at, args.points) for site in range(args.sites)]


def _write_and_tend(
    sessions: sessionmaker[Session], args: argparse.Namespace
) -> tuple[int, float, float]:
    """Every interval's messages through the batch store, then the scheduler's telemetry job at
    that simulated time (the collector runs it every 5 minutes): (messages, write s, job s)."""
    store = BatchStore(alarm_engine([]))
    steps = int(args.hours * 3600 / args.interval_s)
    every = max(1, round(JOB_EVERY_S / args.interval_s))
    messages, write_s, job_s = 0, 0.0, 0.0
    for step in range(steps):
        batch_all = _interval(args, step)
        messages += len(batch_all)
        start = time.perf_counter()
        for first in range(0, len(batch_all), BATCH):
            batch = batch_all[first : first + BATCH]
            with sessions() as session:
                store.process(session, batch, now=batch[-1].received_at)
                session.commit()
        write_s += time.perf_counter() - start
        if (step + 1) % every == 0:
            now = T0 + timedelta(seconds=(step + 1) * args.interval_s)
            start = time.perf_counter()
            with sessions() as session:
                rollup_and_prune(session, now=now)
                session.commit()
            job_s += time.perf_counter() - start
            _autovacuum(sessions)
    return messages, write_s, job_s


def _autovacuum(sessions: sessionmaker[Session]) -> None:
    """On PostgreSQL, what autovacuum does in the 5 real minutes between two runs of the job:
    24 simulated hours last minutes here, far too short for its own schedule (its naptime is
    a minute), and rows rewritten every 5 minutes would pile up as dead tuples it reclaims in
    a real deployment. A plain VACUUM (space made reusable, nothing rewritten), not timed."""
    bind = sessions.kw["bind"]
    if bind.dialect.name != "postgresql":
        return
    with bind.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        names = conn.execute(sa.text(_TELEMETRY_TABLES)).scalars().all()
        for name in names:
            conn.exec_driver_sql(f'VACUUM "{name}"')


_TELEMETRY_TABLES = (
    "SELECT c.relname FROM pg_class c"
    " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
    " AND c.relname LIKE 'telemetry%'"
)


def _bytes_on_disk(engine: sa.Engine, db_path: Path | None) -> tuple[int, dict[str, int]]:
    """Every telemetry table with its indexes, TOAST and partitions after a plain VACUUM (what
    autovacuum does), on PostgreSQL; the whole file on SQLite (telemetry is nearly all of it)."""
    if db_path is not None:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            tables = conn.exec_driver_sql(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM"
                " sqlite_master WHERE tbl_name LIKE 'telemetry%') GROUP BY name"
            ).all()
        size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
        return size, {str(name): int(n) for name, n in tables}
    relations = (
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')"
        " AND c.relname LIKE 'telemetry%'"
    )
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for (name,) in conn.execute(
            sa.text(relations.replace(", pg_total_relation_size(c.oid)", ""))
        ):
            conn.exec_driver_sql(f'VACUUM ANALYZE "{name}"')
        tables = {str(n): int(b) for n, b in conn.execute(sa.text(relations))}
    return sum(tables.values()), tables


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _query_ms(
    sessions: sessionmaker[Session], args: argparse.Namespace, *, resolution: str
) -> tuple[float, float, int]:
    rng = random.Random(5)
    times, points = [], 0
    until = T0 + timedelta(hours=args.hours)
    with sessions() as session:
        for _ in range(QUERIES):
            site = rng.randrange(args.sites)
            start = time.perf_counter()
            got = series(
                session,
                site_id=f"PM-T{site:05d}",
                equipment_id="env-1",
                point=f"p{rng.randrange(args.points)}",
                since=T0,
                until=until,
                resolution=resolution,
            )
            times.append((time.perf_counter() - start) * 1000)
            points += len(got)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return round(times[len(times) // 2], 2), round(p99, 2), points // QUERIES


def _count(session: Session, sql: str) -> int:
    return int(session.scalar(sa.text(sql)) or 0)


def run(args: argparse.Namespace, db_url: str, db_path: Path | None) -> dict[str, Any]:
    """Every phase; the figures."""
    engine = make_engine(db_url)
    create_schema(engine)
    sessions = make_session_factory(engine)
    first = _interval(args, 0)[0]
    decode(first.topic, first.payload)  # the real contract
    # The collector admits enrolled agents only: the benchmark's are, like a fleet's.
    with sessions() as session:
        enrol_in(session, {f"tele-{site:05d}": f"PM-T{site:05d}" for site in range(args.sites)})
        session.commit()
    messages, write_s, job_s = _write_and_tend(sessions, args)
    samples = messages * args.points
    size, tables = _bytes_on_disk(engine, db_path)
    after = T0 + timedelta(hours=args.hours + 2)
    figures: dict[str, Any] = {
        "db": engine.dialect.name,
        "sites": args.sites,
        "points": args.points,
        "interval_s": args.interval_s,
        "hours": args.hours,
        "messages": messages,
        "samples": samples,
        "write_samples_per_s": round(samples / write_s),
        "write_msgs_per_s": round(messages / write_s),
        "scheduler_job_s": round(job_s, 2),
        "bytes_per_sample": round(size / samples, 1),
        "bytes_by_table": tables,
    }
    with sessions() as session:
        rollup_s = _timed(lambda: rollup_and_prune(session, now=after))
        session.commit()
        hours_written = _count(session, "SELECT count(*) FROM telemetry_hourly")
    figures["last_rollup_s"] = round(rollup_s, 2)
    figures["hourly_rows"] = hours_written
    raw_p50, raw_p99, raw_points = _query_ms(sessions, args, resolution="raw")
    hourly_p50, hourly_p99, hourly_points = _query_ms(sessions, args, resolution="hourly")
    figures |= {
        "raw_series_points": raw_points,
        "raw_series_p50_ms": raw_p50,
        "raw_series_p99_ms": raw_p99,
        "hourly_series_points": hourly_points,
        "hourly_series_p50_ms": hourly_p50,
        "hourly_series_p99_ms": hourly_p99,
    }
    # The slice is one day (or less): past its retention, pruning drops all of it.
    with sessions() as session:
        prune_s = _timed(lambda: rollup_and_prune(session, now=after + timedelta(days=31)))
        session.commit()
    with sessions() as session:
        left = sample_count(session)
        refused = _count(session, "SELECT count(*) FROM dead_letters")
        keys_left = _count(session, "SELECT count(*) FROM telemetry_batches")
    figures["prune_s"] = round(prune_s, 2)
    figures["prune_samples_per_s"] = round(samples / prune_s)
    figures["samples_left_after_prune"] = left
    figures["dedup_keys_left_after_prune"] = keys_left
    engine.dispose()
    if refused:  # every sample written must have been stored: a refusal is no write rate
        raise SystemExit(f"{refused} messages refused by the collector")
    return figures


def extrapolate(figures: dict[str, Any], retention_days: int) -> dict[str, Any]:
    """What the measured rates and sizes mean for the national fleet (arithmetic only)."""
    per_day = FLEET_SITES * FLEET_POINTS * 86_400 // FLEET_INTERVAL_S
    per_s = per_day / 86_400
    return {
        "fleet_samples_per_day": per_day,
        "fleet_write_headroom": round(figures["write_samples_per_s"] / per_s, 1),
        "fleet_raw_gib_at_retention": round(
            per_day * retention_days * figures["bytes_per_sample"] / 2**30, 1
        ),
        "fleet_prune_s_per_hour": round(per_day / 24 / figures["prune_samples_per_s"], 1),
    }


def main() -> None:
    """Run every phase and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--sites", type=int, default=1_000)
    parser.add_argument("--points", type=int, default=FLEET_POINTS)
    parser.add_argument("--interval-s", type=float, default=FLEET_INTERVAL_S)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--retention-days", type=int, default=30)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="sw-bench-telemetry-") as tmp:
        db_path = None if args.db else Path(tmp) / "collector.db"
        figures = run(args, args.db or f"sqlite:///{db_path}", db_path)
    figures |= extrapolate(figures, args.retention_days)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
