"""Raw samples are kept for the retention and rolled up into hours kept for years."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.telemetry.models import TelemetryHourly, TelemetrySample
from collector.telemetry.service import rollup_and_prune, series


def test_hours_are_aggregated_and_raw_samples_pruned_after_retention(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    start = clock.now()
    with sessions() as session:
        for minute in range(0, 3 * 60, 10):  # three hours, a sample every 10 minutes
            session.add(
                TelemetrySample(
                    site_id="S1",
                    equipment_id="env-1",
                    point="temperature",
                    ts=start + timedelta(minutes=minute),
                    value=20.0 + minute / 60,
                )
            )
        session.commit()
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
        assert session.scalar(select(func.count()).select_from(TelemetrySample)) == 0
