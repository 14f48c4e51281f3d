"""An upgrade moves the row-per-sample telemetry into series and packed days, exactly, and the
keys of the messages already stored still refuse their re-sends."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from collector.storage import make_engine, make_session_factory
from collector.storage.migrate import alembic_config, current_revision, head_revision
from collector.storage.schema import create_schema
from collector.telemetry.service import (
    claim_messages,
    rollup_and_prune,
    sample_count,
    series,
)

START = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
# Across midnight, microseconds kept, values a scale made not quite decimal, one raw-only.
OLD = [
    (START + timedelta(minutes=5 * i, microseconds=137 * i), v)
    for i, v in enumerate([21.3, 21.900000000000002, -7.25, 1e300, 22.5, 5e-324] * 8)
]
STREAM = "ab" * 16


@pytest.fixture(params=["sqlite", "postgresql"])
def old_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at the revision before telemetry series, holding old-layout telemetry."""
    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0013")
    sessions = make_session_factory(engine)  # UTC datetimes bound as the old models bound them
    with sessions() as session:
        insert = text(
            "INSERT INTO telemetry_samples (site_id, equipment_id, point, ts, value, unit)"
            " VALUES (:s, 'env-1', :p, :ts, :v, :u)"
        ).bindparams(ts=START)  # the bind type; each row gives its own value
        session.execute(
            insert,
            [{"s": "S1", "p": "temperature", "ts": at, "v": v, "u": "degC"} for at, v in OLD]
            + [{"s": "S1", "p": "door", "ts": START, "v": 1.0, "u": None}],
        )
        session.execute(
            text(
                "INSERT INTO telemetry_batches (agent_id, stream_id, seq, received_at)"
                " VALUES ('a1', :stream, 7, :at)"
            ).bindparams(at=START),
            {"stream": STREAM, "at": START},
        )
        session.commit()
    yield engine
    engine.dispose()


def _raw(engine: Engine, point: str) -> list[tuple[datetime, bytes]]:
    with make_session_factory(engine)() as session:
        return [
            (p.at, struct.pack("<d", p.mean))
            for p in series(
                session,
                site_id="S1",
                equipment_id="env-1",
                point=point,
                since=START - timedelta(days=1),
                until=START + timedelta(days=2),
                resolution="raw",
            )
        ]


def test_old_samples_and_keys_move_into_the_new_layout(old_engine: Engine) -> None:
    create_schema(old_engine)  # what the collector does at start
    assert current_revision(old_engine) == head_revision()
    expected = [(at, struct.pack("<d", v)) for at, v in OLD]
    assert _raw(old_engine, "temperature") == expected  # staged, read as they are
    sessions = make_session_factory(old_engine)
    with sessions() as session:
        # A re-send of a message stored before the upgrade stores nothing.
        assert claim_messages(session, [("a1", STREAM, 7, START + timedelta(hours=3))]) == set()
        # The scheduler's next run packs them into their days.
        rollup_and_prune(session, now=START + timedelta(hours=6))
        session.commit()
        assert sample_count(session) == len(OLD) + 1
        staged = session.scalar(text("SELECT count(*) FROM telemetry_staging"))
        days = session.scalar(text("SELECT count(*) FROM telemetry_chunks"))
    assert (staged, days) == (0, 3)  # temperature on two days, the door on one
    assert _raw(old_engine, "temperature") == expected
    assert [at for at, _ in _raw(old_engine, "door")] == [START]


def test_a_downgrade_unpacks_the_samples_into_rows_again(old_engine: Engine) -> None:
    create_schema(old_engine)
    sessions = make_session_factory(old_engine)
    with sessions() as session:
        rollup_and_prune(session, now=START + timedelta(hours=6))
        session.commit()
    config = alembic_config()
    with old_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0013")
    with old_engine.connect() as connection:
        values = connection.execute(
            text("SELECT value FROM telemetry_samples WHERE point = 'temperature' ORDER BY ts")
        ).scalars()
        keys = connection.execute(text("SELECT agent_id, seq FROM telemetry_batches")).all()
    assert [struct.pack("<d", v) for v in values] == [struct.pack("<d", v) for _, v in OLD]
    assert [tuple(k) for k in keys] == [("a1", 7)]
