"""Shared fixtures: a real mosquitto per test, unique ids, PostgreSQL when given, a manual clock,
and the whole chain of real processes (``stack``)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clocks import ManualClock
from simulators.broker import MosquittoProcess
from simulators.stack import Stack

PG_URL_ENV = "SHELTERWATCH_TEST_PG_URL"
BUDGET_ENV = "SHELTERWATCH_BUDGET"


def budget(*, short: int, long: int) -> int:
    """Counts for slow test families: ``short`` in ``make test``, ``long`` in ``make test-long``."""
    return long if os.environ.get(BUDGET_ENV) == "long" else short


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A real mosquitto on a free port; tests may stop, kill and restart it."""
    proc = MosquittoProcess(tmp_path / "broker")
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def unique_id() -> str:
    """A short id unique to this test, for agent ids, sites and client ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when the test says so (Monday 5 January 2026, 09:00 UTC)."""
    return ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


def _pg_schemas() -> Iterator[Callable[[], str]]:
    """Makes fresh PostgreSQL schemas (as many as asked for), returns their URLs and drops them
    at the end; a visible skip when no server is given."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"PostgreSQL not configured: set {PG_URL_ENV} to run this test")
    import sqlalchemy as sa

    engine = sa.create_engine(base)
    schemas: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}options=-csearch_path%3D{schema}"

    try:
        yield make
    finally:
        with engine.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def pg_schema() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL schemas for this test."""
    yield from _pg_schemas()


@pytest.fixture(scope="module")
def module_pg_schema() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL schemas shared by one test module (for read-mostly worlds)."""
    yield from _pg_schemas()


@pytest.fixture
def pg_url(pg_schema: Callable[[], str]) -> str:
    """A fresh PostgreSQL schema for this test, or a visible skip when no server is given."""
    return pg_schema()


DEMO_SITES = Path(__file__).resolve().parents[1] / "firmware_config" / "sites" / "demo"


def wait_for(what: str, probe: Callable[[], Any], *, timeout_s: float = 30.0) -> Any:
    """Poll ``probe`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    chain = Stack(tmp_path / "stack")
    chain.broker.start()
    chain.noc_token = chain.create_token(name="noc", role="noc")
    chain.start_collector()
    try:
        yield chain
    finally:
        chain.stop()


def process_tree(root_pid: int) -> dict[int, str]:
    """Every live descendant of ``root_pid`` (children, grandchildren...), pid -> command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, parent = f.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError):
            continue
        if state != "Z":
            parents[int(entry)] = int(parent)
            commands[int(entry)] = command
    found: dict[int, str] = {}
    frontier = {root_pid}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found.update((pid, commands[pid]) for pid in frontier)
    return found


def still_alive(processes: dict[int, str]) -> dict[int, str]:
    """Those of ``processes`` (pid -> command line) still running the same command (a zombie,
    or a pid reused by another command, is gone)."""
    alive = {}
    for pid, command in processes.items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                now = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state != "Z" and now == command:
            alive[pid] = command
    return alive


def survivors(processes: dict[int, str], *, within_s: float) -> dict[int, str]:
    """Those of ``processes`` still alive after ``within_s`` (or as soon as none is); they are
    killed then, so that a failing test leaves nothing running behind it."""
    deadline = time.monotonic() + within_s
    while still_alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = still_alive(processes)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return alive
