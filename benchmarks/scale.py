"""Scale-out benchmark: the ingest load against 1, then 2 collector instances on PostgreSQL.

Run: ``.venv/bin/python -m benchmarks.scale`` (about six minutes; ``--help`` for the knobs).
PostgreSQL comes from ``--pg-url`` or ``SHELTERWATCH_TEST_PG_URL`` (default: the local server);
each run gets a schema of its own, dropped at the end.

For each instance count, against a private mosquitto (shared subscription, round-robin):

1. births of every identity, then heartbeats once a minute for the whole run;
2. live: ``--rate`` messages/s offered for ``--duration`` s (telemetry batches, 2 % door alarm
   transitions, which open, re-supervise and reopen tickets); counted at the collector's ack;
3. a regional storm: ``--storm-sites`` sites lose the mains within ``--storm-window`` s;
4. the database says how many tickets are duplicated (more than one open ticket for an alarm
   identity), how many generic incidents the storm left (one is right) and how many were
   merged into another (cancelled, pointing at it) when a late raise bridged two groups, and
   the alarms by type.

Lock waits: PostgreSQL keeps no cumulative lock-wait counter, so ``pg_stat_activity`` is
sampled every 100 ms during the live and storm phases; each backend seen waiting on a lock
(``wait_event_type = 'Lock'``, advisory and row locks alike) counts for 0.1 s.

The generator, mosquitto, PostgreSQL and the collectors share this machine's cores: the
absolute rates say more about the machine than about the collector. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks._machine import print_machine
from benchmarks.ingest import (
    AckWatcher,
    Heartbeats,
    Identity,
    Publisher,
    _paced,
    _percentile,
    send_one,
)
from protocol.topics import Channel, agent_topic
from simulators.broker import MosquittoProcess
from simulators.cluster import CollectorCluster
from simulators.stack import enrol_agents

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SAMPLE_S = 0.1


@contextmanager
def _schema(base_url: str) -> Iterator[str]:
    """A fresh schema for one run; its URL."""
    engine = sa.create_engine(base_url)
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


class LockWaitSampler:
    """Samples ``pg_stat_activity`` every 100 ms: backends waiting on a lock, as seconds."""

    def __init__(self, db_url: str) -> None:
        self._engine = sa.create_engine(db_url)
        self.wait_s = 0.0
        self.max_waiting = 0
        # Seconds waited, by what was waited on and by which statement: where contention is.
        self.by_what: Counter[str] = Counter()  # in samples
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _run(self) -> None:
        query = sa.text(
            "SELECT a.pid, l.locktype, coalesce(c.relname, ''), a.query"
            " FROM pg_stat_activity a"
            " LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted"
            " LEFT JOIN pg_class c ON c.oid = l.relation"
            " WHERE a.wait_event_type = 'Lock' AND a.datname = current_database()"
        )
        with self._engine.connect() as conn:
            while not self._stop.wait(SAMPLE_S):
                rows = conn.execute(query).all()
                conn.rollback()
                waiting = len({pid for pid, *_ in rows})
                self.wait_s += waiting * SAMPLE_S
                self.max_waiting = max(self.max_waiting, waiting)
                for _, locktype, relation, statement in rows:
                    what = f"{locktype}{':' + relation if relation else ''} {_brief(statement)}"
                    self.by_what[what] += 1

    def top(self, n: int = 4) -> str:
        """The ``n`` things waited on longest, with the seconds: one line for the JSON."""
        return "; ".join(f"{what} {k * SAMPLE_S:.1f}s" for what, k in self.by_what.most_common(n))


def _brief(statement: str) -> str:
    """A statement's first 70 characters, its whitespace collapsed."""
    return " ".join(statement.split())[:70]


def _scalar(db_url: str, sql: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def _alarms_by_type(db_url: str) -> str:
    """Alarm occurrences per type: where the tickets came from, as one line for the JSON."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT alarm_type, count(*) FROM alarms GROUP BY 1 ORDER BY 2 DESC")
            ).all()
    finally:
        engine.dispose()
    return ", ".join(f"{alarm_type} {n}" for alarm_type, n in rows)


def _wait_streams(db_url: str, expected: int, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if _scalar(db_url, "SELECT count(*) FROM streams") >= expected:
            break
        time.sleep(0.5)
    return time.monotonic() - start


def run_once(
    workdir: Path, broker: MosquittoProcess, db_url: str, *, size: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One instance count: warm-up, live, storm; figures suffixed by the count."""
    tag = uuid.uuid4().hex[:4]
    identities = [
        Identity(agent_id=f"scale-{tag}-{i:05d}", site_id=f"PM-S{tag}{i:05d}")
        for i in range(args.identities)
    ]
    # The collectors admit enrolled agents only: the benchmark's are, like a fleet's.
    enrol_agents(db_url, {ident.agent_id: ident.site_id for ident in identities})
    cluster = CollectorCluster(
        workdir / f"x{size}", db_url=db_url, broker_port=broker.port, size=size
    )
    cluster.start()
    pub = Publisher(broker.host, broker.port, args.connections)
    watcher = AckWatcher(broker.host, broker.port)
    heartbeats = Heartbeats(pub, identities, 60.0)
    figures: dict[str, Any] = {}
    try:
        for i, ident in enumerate(identities):
            pub.publish(i, agent_topic(ident.agent_id, Channel.STATUS), ident.birth(), retain=True)
        pub.flush()
        figures["warm_up_s"] = round(_wait_streams(db_url, len(identities), args.drain), 1)
        heartbeats.start()
        rng = random.Random(3)
        with LockWaitSampler(db_url) as sampler:
            acked_before = watcher.acked
            start = time.monotonic()
            offered = 0
            for n in _paced(args.rate, args.duration):
                send_one(pub, watcher, identities, n, rng, alarm_share=0.02)
                offered += 1
            offered_s = time.monotonic() - start
            unacked = watcher.wait_drained(args.drain)
            acked = watcher.acked - acked_before
            figures["offered_msgs_per_s"] = round(offered / offered_s, 1)
            figures["msgs_per_s"] = round(acked / max(watcher.last_ack - start, 1e-9), 1)
            figures["lag_p99_s"] = round(_percentile(watcher.lags, 0.99), 3)
            figures["live_unacked"] = unacked
            figures["live_lock_wait_s"] = round(sampler.wait_s, 1)
            _storm(pub, watcher, identities[: args.storm_sites], args.storm_window)
            figures["storm_unacked"] = watcher.wait_drained(args.drain)
            figures["lock_wait_s"] = round(sampler.wait_s, 1)
            figures["max_backends_waiting"] = sampler.max_waiting
            figures["lock_waits_top"] = sampler.top()
    finally:
        heartbeats.stop()
        watcher.close()
        pub.close()
        cluster.stop()
    figures["duplicate_tickets"] = _scalar(
        db_url,
        "SELECT count(*) FROM (SELECT alarm_identity FROM tickets"
        " WHERE alarm_identity IS NOT NULL AND state NOT IN ('closed', 'cancelled')"
        " GROUP BY alarm_identity HAVING count(*) > 1) d",
    )
    # Live ones; a merged one was cancelled into another when a late raise showed two storm
    # groups to be one storm (counted apart: how often the order of application split a storm).
    figures["generic_incidents"] = _scalar(
        db_url,
        "SELECT count(*) FROM tickets WHERE kind = 'generic_incident'"
        " AND NOT (state = 'cancelled' AND parent_ticket_id IS NOT NULL)",
    )
    figures["generic_incidents_merged"] = _scalar(
        db_url,
        "SELECT count(*) FROM tickets WHERE kind = 'generic_incident'"
        " AND state = 'cancelled' AND parent_ticket_id IS NOT NULL",
    )
    figures["tickets"] = _scalar(db_url, "SELECT count(*) FROM tickets")
    # Nothing the benchmark sent may have been refused (a refusal is no throughput).
    figures["dead_letters"] = _scalar(db_url, "SELECT count(*) FROM dead_letters")
    if figures["dead_letters"]:
        raise SystemExit(f"messages refused by the collectors: {figures}")
    figures["alarms_by_type"] = _alarms_by_type(db_url)
    return {f"{key}_{size}": value for key, value in figures.items()}


def _storm(pub: Publisher, watcher: AckWatcher, sites: list[Identity], window_s: float) -> None:
    start = time.monotonic()
    for i, ident in sorted(enumerate(sites), key=lambda _: random.random()):
        delay = start + window_s * i / max(len(sites), 1) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        seq, payload = ident.alarm("power", "mains", "mains_lost", "major", raised=True)
        watcher.expect(ident.agent_id, "events", seq)
        pub.publish(i, agent_topic(ident.agent_id, Channel.EVENTS), payload)


def main() -> None:
    """Run 1 then 2 instances and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-url", default=os.environ.get("SHELTERWATCH_TEST_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--identities", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=3_000.0, help="offered msgs/s (live)")
    parser.add_argument("--duration", type=float, default=60.0, help="live phase, seconds")
    parser.add_argument("--storm-sites", type=int, default=500)
    parser.add_argument("--storm-window", type=float, default=30.0)
    parser.add_argument("--drain", type=float, default=300.0, help="max wait for acks, seconds")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 2], help="instance counts to run, in order"
    )
    args = parser.parse_args()
    print_machine()
    figures: dict[str, Any] = {"identities": args.identities, "rate_offered": args.rate}
    with tempfile.TemporaryDirectory(prefix="sw-bench-scale-") as tmp:
        for size in args.sizes:
            # A broker of its own for each count: the births are retained, and an earlier run's
            # would reach the next run's collectors as agents that then fall silent (thousands
            # of agent-unreachable alarms that are not part of the load).
            broker = MosquittoProcess(Path(tmp) / f"broker{size}")
            broker.start()
            try:
                with _schema(args.pg_url) as db_url:
                    figures |= run_once(Path(tmp), broker, db_url, size=size, args=args)
            finally:
                broker.stop()
            print(f"{size} instance(s) done", figures, flush=True)
    figures["lock_wait_s_total"] = round(sum(figures[f"lock_wait_s_{n}"] for n in args.sizes), 1)
    figures["duplicate_tickets"] = sum(figures[f"duplicate_tickets_{n}"] for n in args.sizes)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
