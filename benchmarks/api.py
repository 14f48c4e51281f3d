"""API benchmark: the NOC's busiest reads against a national-size database on SQLite.

Run: ``.venv/bin/python -m benchmarks.api`` (about two minutes).

Loads 21,000 sites, 200,000 alarms (5 % still open) and 100,000 tickets (2 % open, each with
its clock log and operations), starts the real collector process on that database, and drives
``--rate`` requests/s (open loop) of three queries: the open-ticket list, one ticket's detail,
the active-alarm list. Last line: one JSON object with ``p50_ms``/``p99_ms`` per query and
``errors``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from benchmarks._machine import print_machine
from collector.alarms.models import Alarm
from collector.inventory.models import Site
from collector.storage import make_engine
from collector.storage.schema import create_schema
from collector.tickets.models import Ticket, TicketClockEvent, TicketOperation
from simulators.stack import Stack

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ["door_open", "mains_lost", "temp_high", "hvac_fault", "fire", "on_battery"]


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def load(db_url: str, *, sites: int, alarms: int, tickets: int) -> list[str]:
    """Fill the database; returns the ticket references."""
    engine = make_engine(db_url)
    create_schema(engine)
    rng = random.Random(3)
    site_ids = [("NRO" if i % 20 == 0 else "PM") + f"-BENCH-{i:05d}" for i in range(sites)]
    refs = []
    with engine.begin() as conn:
        conn.execute(
            insert(Site),
            [
                {
                    "site_id": s,
                    "kind": "nro" if s.startswith("NRO") else "pm",
                    "name": s,
                    "region": f"region-{i % 13:02d}",
                    "address": "",
                }
                for i, s in enumerate(site_ids)
            ],
        )
        rows = []
        for i in range(alarms):
            first = T0 + timedelta(seconds=rng.randrange(300 * 86400))
            is_open = i % 20 == 0
            rows.append(
                {
                    "site_id": rng.choice(site_ids),
                    "agent_id": f"agent-{i % sites}",
                    "equipment_id": "eq-1",
                    "point": f"p{i}",
                    "alarm_type": rng.choice(TYPES),
                    "state": "active" if is_open else "cleared",
                    "severity": rng.choice(["critical", "major", "minor"]),
                    "value": "null",
                    "reason": "",
                    "count": 1,
                    "first_seen": first,
                    "last_seen": first,
                    "cleared_at": None if is_open else first + timedelta(minutes=30),
                    "test": False,
                    "in_maintenance": False,
                    "flapping": False,
                    "edge_active": is_open,
                    "last_transition_at": first,
                    "raised_at": first,
                }
            )
        for chunk in _chunks(rows):
            conn.execute(insert(Alarm), chunk)
        rows = []
        for i in range(1, tickets + 1):
            opened = T0 + timedelta(seconds=rng.randrange(300 * 86400))
            is_open = i % 50 == 0
            ref = f"TKT-2026-{i:06d}"
            refs.append(ref)
            rows.append(
                {
                    "id": i,
                    "ref": ref,
                    "source": "alarm",
                    "kind": "curative",
                    "site_id": rng.choice(site_ids),
                    "alarm_identity": f"x/eq-1/p{i}/door_open",
                    "title": f"door_open at site {i}",
                    "description": "",
                    "state": "in_progress" if is_open else "closed",
                    "criticality": rng.choice(["critical", "major", "minor"]),
                    "escalation_level": 1,
                    "opened_at": opened,
                    "updated_at": opened,
                    "closed_at": None if is_open else opened + timedelta(hours=5),
                    "recurrences": 0,
                    "contract_id": "curative-24x7",
                    "sla_breached": False,
                    "version": 1,
                }
            )
        for chunk in _chunks(rows):
            conn.execute(insert(Ticket), chunk)
        clock_rows, ops = [], []
        for row in rows:
            clock_rows.append(
                {
                    "ticket_id": row["id"],
                    "at": row["opened_at"],
                    "state": "running",
                    "reason": "opened",
                    "actor": "system",
                }
            )
            ops.append(
                {
                    "ticket_id": row["id"],
                    "at": row["opened_at"],
                    "actor": "system",
                    "action": "opened",
                    "before": None,
                    "after": "opened",
                    "detail": "opened from alarm door_open",
                    "visible_to_client": True,
                }
            )
            if row["closed_at"] is not None:
                clock_rows.append(
                    {
                        "ticket_id": row["id"],
                        "at": row["closed_at"],
                        "state": "stopped",
                        "reason": "closed",
                        "actor": "noc",
                    }
                )
                ops.append(
                    {
                        "ticket_id": row["id"],
                        "at": row["closed_at"],
                        "actor": "noc",
                        "action": "closed",
                        "before": "restored",
                        "after": "closed",
                        "detail": "",
                        "visible_to_client": True,
                    }
                )
        for chunk in _chunks(clock_rows):
            conn.execute(insert(TicketClockEvent), chunk)
        for chunk in _chunks(ops):
            conn.execute(insert(TicketOperation), chunk)
    engine.dispose()
    return refs


def drive(
    base_url: str, token: str, refs: list[str], *, rate: float, duration_s: float
) -> dict[str, Any]:
    """Open-loop requests at ``rate``/s, round-robin over the three queries."""
    queries = {
        "ticket_list": lambda _r: "/api/v1/tickets?open_only=true&limit=50",
        "ticket_detail": lambda r: f"/api/v1/tickets/{r.choice(refs)}",
        "active_alarms": lambda _r: "/api/v1/alarms?state=open&limit=50",
    }
    names = list(queries)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    lock = threading.Lock()
    client = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    rng = random.Random(5)

    def one(name: str, path: str) -> None:
        nonlocal errors
        start = time.perf_counter()
        try:
            ok = client.get(path).status_code == 200
        except httpx.HTTPError:
            ok = False
        elapsed = (time.perf_counter() - start) * 1000
        with lock:
            latencies[name].append(elapsed)
            errors += not ok

    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < duration_s:
            while n < elapsed * rate:
                name = names[n % len(names)]
                pool.submit(one, name, queries[name](rng))
                n += 1
            time.sleep(0.002)
    client.close()
    result: dict[str, Any] = {}
    for name in names:
        ordered = sorted(latencies[name])
        result[name] = {
            "requests": len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2], 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        }
    result["errors"] = errors
    result["rate_per_s"] = rate
    return result


def main() -> None:
    """Load, start the collector, drive, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=21_000)
    parser.add_argument("--alarms", type=int, default=200_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="sw-bench-api-") as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'collector.db'}"
        started = time.monotonic()
        refs = load(db_url, sites=args.sites, alarms=args.alarms, tickets=args.tickets)
        print(f"loaded in {time.monotonic() - started:.0f} s", flush=True)
        stack = Stack(Path(tmp) / "stack", db_url=db_url)
        stack.broker.start()
        token = stack.create_token(name="bench", role="noc")
        stack.start_collector()
        try:
            figures = drive(stack.base_url, token, refs, rate=args.rate, duration_s=args.duration)
        finally:
            stack.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
