"""Telemetry through the batch store: stored once however often it is delivered, read the same
staged or packed, exact to the microsecond and the last bit; on PostgreSQL, a partition a day
made ahead and dropped whole at retention."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.ingest.store import BatchStore, Received
from collector.listeners import alarm_engine
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from collector.telemetry.service import rollup_and_prune, sample_count, series
from tests.collector.conftest import enrol

STREAM = "0123456789abcdef0123456789abcdef"
VALUES = [21.3, 21.900000000000002, 1e-300, -3.5, 230.5]


def _message(seq: int, at: datetime) -> Received:
    body = {
        "v": 1,
        "kind": "telemetry",
        "agent_id": "a1",
        "stream_id": STREAM,
        "seq": seq,
        "ts": at.isoformat(),
        "clock_synced": True,
        "site_id": "S1",
        "samples": [
            {
                "equipment_id": "rect-1",
                "point": "voltage",
                "value": VALUES[(seq + n) % len(VALUES)],
                "unit": "V",
                "ts": (at + timedelta(microseconds=123_457 * n)).isoformat(),
            }
            for n in range(3)
        ],
    }
    return Received("sw/v1/agents/a1/telemetry", json.dumps(body).encode(), at)


def _raw(session: Session, since: datetime, until: datetime) -> list[tuple[datetime, bytes]]:
    points = series(
        session,
        site_id="S1",
        equipment_id="rect-1",
        point="voltage",
        since=since,
        until=until,
        resolution="raw",
    )
    return [(p.at, struct.pack("<d", p.mean)) for p in points]


def test_redelivered_telemetry_is_stored_once_and_reads_the_same_packed(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    enrol(sessions, {"a1": "S1"})
    start = clock.now()
    messages = [_message(seq, start + timedelta(minutes=5 * seq)) for seq in range(1, 25)]
    store = BatchStore(alarm_engine([]))
    for batch in (messages[:10], messages, messages[5:]):  # a re-send, then another
        with sessions() as session:
            store.process(session, batch, now=batch[-1].received_at)
            session.commit()
    expected = [
        (start + timedelta(minutes=5 * seq, microseconds=123_457 * n), VALUES[(seq + n) % 5])
        for seq in range(1, 25)
        for n in range(3)
    ]
    wanted = [(at, struct.pack("<d", v)) for at, v in expected]
    window = (start, start + timedelta(days=1))
    with sessions() as session:
        assert sample_count(session) == 72
        assert _raw(session, *window) == wanted  # staged
        rollup_and_prune(session, now=start + timedelta(hours=3))
        session.commit()
        assert session.scalar(text("SELECT count(*) FROM telemetry_staging")) == 0
        assert _raw(session, *window) == wanted  # packed
        # A range cuts inside the packed day to the microsecond.
        inside = _raw(session, expected[4][0], expected[7][0])
    assert inside == wanted[4:7]


def test_postgresql_keeps_a_partition_a_day_and_drops_it_whole(
    pg_url: str, clock: ManualClock
) -> None:
    engine = make_engine(pg_url)
    try:
        create_schema(engine)
        sessions = make_session_factory(engine)
        enrol(sessions, {"a1": "S1"})
        late = clock.now() + timedelta(hours=14)  # 23:00, its samples across midnight
        with sessions() as session:
            BatchStore(alarm_engine([])).process(
                session,
                [_message(seq, late + timedelta(minutes=20 * seq)) for seq in range(6)],
                now=late,
            )
            rollup_and_prune(session, now=late + timedelta(hours=3))
            session.commit()
            made = _partitions(session)
            brin = session.scalar(
                text(
                    # This test's schema only: the other worker's schemas have the same index.
                    "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_telemetry_chunks_day'"
                    " AND schemaname = current_schema() AND indexdef LIKE '%USING brin%'"
                )
            )
        day = late.date()
        # The two days written, and the day after the run's made ahead.
        assert made == [
            f"telemetry_chunks_{d:%Y%m%d}"
            for d in (day, day + timedelta(days=1), day + timedelta(days=2))
        ]
        assert brin == 1
        with sessions() as session:
            _, dropped = rollup_and_prune(session, now=late + timedelta(days=31, hours=3))
            session.commit()
            assert dropped == 18
            assert all(
                name > f"telemetry_chunks_{day + timedelta(days=1):%Y%m%d}"
                for name in _partitions(session)
            )
    finally:
        engine.dispose()  # even when an assertion fails: no connection left to the GC


def _partitions(session: Session) -> list[str]:
    return list(
        session.scalars(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'telemetry_chunks'::regclass ORDER BY c.relname"
            )
        )
    )
