"""Raw samples are kept for the retention and rolled up into hours kept for years."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.telemetry.models import TelemetryBatch, TelemetryHourly
from collector.telemetry.service import (
    claim_messages,
    rollup_and_prune,
    sample_count,
    series,
    store_samples,
)


def _store_samples(
    sessions: sessionmaker[Session],
    samples: list[tuple[datetime, float]],
    *,
    equipment_id: str = "pdu",
    point: str = "load",
) -> None:
    """(time, value) samples of one series of site S1, committed."""
    with sessions() as session:
        store_samples(session, [("S1", equipment_id, point, None, at, v) for at, v in samples])
        session.commit()


def test_hours_are_aggregated_and_raw_samples_pruned_after_retention(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    start = clock.now()
    _store_samples(
        sessions,
        # three hours, a sample every 10 minutes
        [(start + timedelta(minutes=m), 20.0 + m / 60) for m in range(0, 3 * 60, 10)],
        equipment_id="env-1",
        point="temperature",
    )
    clock.advance(hours=5)
    with sessions() as session:
        written, pruned = rollup_and_prune(session, now=clock.now(), retention=timedelta(days=30))
        session.commit()
        assert (written, pruned) == (3, 0)
        hours = series(
            session,
            site_id="S1",
            equipment_id="env-1",
            point="temperature",
            since=start,
            until=clock.now(),
            resolution="hourly",
        )
    assert [h.count for h in hours] == [6, 6, 6]
    assert hours[0].minimum == 20.0 and hours[0].maximum == pytest.approx(20 + 50 / 60)
    clock.advance(hours=24 * 31)
    with sessions() as session:
        written, pruned = rollup_and_prune(session, now=clock.now(), retention=timedelta(days=30))
        session.commit()
        assert (written, pruned) == (0, 18)
        assert session.scalar(select(func.count()).select_from(TelemetryHourly)) == 3
        assert sample_count(session) == 0


def test_an_hour_holds_the_samples_from_its_first_microsecond_to_its_last(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    start = clock.now()  # 09:00 exactly
    edges = [
        timedelta(0),
        timedelta(minutes=59, seconds=59, microseconds=999_999),
        timedelta(hours=1),
    ]
    _store_samples(sessions, [(start + offset, 1.0) for offset in edges])
    clock.advance(hours=3)
    with sessions() as session:
        rollup_and_prune(session, now=clock.now())
        session.commit()
        hours = series(
            session,
            site_id="S1",
            equipment_id="pdu",
            point="load",
            since=start,
            until=start + timedelta(hours=2),
            resolution="hourly",
        )
    assert [(h.at, h.count) for h in hours] == [(start, 2), (start + timedelta(hours=1), 1)]


def test_the_keys_that_deduplicated_telemetry_go_with_the_raw_samples(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with sessions() as session:
        claim_messages(
            session,
            [
                ("a1", "0" * 32, seq, clock.now() - timedelta(days=days_ago))
                for seq, days_ago in ((1, 40), (2, 31), (3, 1))
            ],
        )
        session.commit()
    with sessions() as session:
        rollup_and_prune(session, now=clock.now(), retention=timedelta(days=30))
        session.commit()
        kept = session.scalars(select(TelemetryBatch.seq)).all()
    # The agent's outbox never holds a batch that long: a key past the retention guards nothing.
    assert kept == [3]


def test_hours_are_utc_hours_whatever_the_database_session_zone(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    # A zone 45 minutes off the hour: local hours would cut 09:00-10:00 UTC in two.
    start = clock.now()  # 09:00 UTC
    _store_samples(sessions, [(start + timedelta(minutes=m), float(m)) for m in (5, 30, 55)])
    clock.advance(hours=3)
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SET LOCAL TIME ZONE 'Pacific/Chatham'"))
        rollup_and_prune(session, now=clock.now())
        session.commit()
        hours = session.scalars(select(TelemetryHourly)).all()
    assert [(h.hour, h.count) for h in hours] == [(start, 3)]
