"""Shared fixtures: a real mosquitto per test, unique ids, PostgreSQL when given, a manual clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clocks import ManualClock
from simulators.broker import MosquittoProcess

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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test, or a visible skip when no server is given."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"PostgreSQL not configured: set {PG_URL_ENV} to run this test")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
