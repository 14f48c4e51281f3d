"""Telemetry retention: raw samples for a while, hourly aggregates for years; series queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from collector.storage.upsert import dialect_insert
from collector.telemetry.models import (
    RollupWatermark,
    TelemetryBatch,
    TelemetryHourly,
    TelemetrySample,
)

DEFAULT_RETENTION = timedelta(days=30)


def _hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def rollup_and_prune(
    session: Session, *, now: datetime, retention: timedelta = DEFAULT_RETENTION
) -> tuple[int, int]:
    """Aggregate every complete hour not rolled yet, then drop raw samples past retention, and
    the keys that deduplicated their messages.

    Returns (hours written, raw samples deleted). The watermark trails the current hour by one,
    so samples buffered at the edge during a short outage still make their hour; a sample later
    than that is kept raw but its hour is not rolled again.
    """
    mark = session.get(RollupWatermark, "hourly", with_for_update=True)
    until = _hour(now) - timedelta(hours=1)
    start = (
        mark.rolled_until
        if mark is not None
        else session.scalar(select(func.min(TelemetrySample.ts)))
    )
    written = 0
    if start is not None and start < until:
        written = _roll_up(session, since=_hour(start), until=until)
        if mark is None:
            session.add(RollupWatermark(name="hourly", rolled_until=until))
        else:
            mark.rolled_until = until
    pruned = session.execute(
        delete(TelemetrySample).where(TelemetrySample.ts < min(now - retention, until))
    )
    # A re-send older than the retention would only store samples pruned at the next run.
    session.execute(delete(TelemetryBatch).where(TelemetryBatch.received_at < now - retention))
    return written, int(getattr(pruned, "rowcount", 0) or 0)


def _roll_up(session: Session, *, since: datetime, until: datetime) -> int:
    """One INSERT ... SELECT ... GROUP BY for every series and hour in [since, until): the
    database does the work (an hour of a national fleet is millions of samples), and an hour
    already written is left as it is."""
    ts = TelemetrySample.ts
    hour: ColumnElement[Any]
    if session.get_bind().dialect.name == "postgresql":
        # In UTC whatever the session's time zone, like every datetime stored here.
        hour = func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", ts)))
    else:
        # The text SQLAlchemy stores SQLite datetimes as, so that hours compare as stored.
        hour = func.strftime("%Y-%m-%d %H:00:00.000000", ts)
    series = (TelemetrySample.site_id, TelemetrySample.equipment_id, TelemetrySample.point)
    aggregated = (
        select(
            *series,
            hour,
            func.count(),
            func.min(TelemetrySample.value),
            func.max(TelemetrySample.value),
            func.sum(TelemetrySample.value),
        )
        .where(ts >= since, ts < until)
        .group_by(*series, hour)
    )
    columns = ["site_id", "equipment_id", "point", "hour", "count", "minimum", "maximum", "total"]
    insert = (
        dialect_insert(session, TelemetryHourly)
        .from_select(columns, aggregated)
        .on_conflict_do_nothing()
        # Counted from what comes back: drivers do not all give a row count for this.
        .returning(TelemetryHourly.id)
    )
    return len(session.execute(insert).all())


@dataclass(frozen=True)
class Point:
    """One point of a series (raw: min = max = mean = value)."""

    at: datetime
    mean: float
    minimum: float
    maximum: float
    count: int


def series(
    session: Session,
    *,
    site_id: str,
    equipment_id: str,
    point: str,
    since: datetime,
    until: datetime,
    resolution: str,
) -> list[Point]:
    """Raw samples or hourly aggregates of one point over a time range."""
    if resolution == "hourly":
        rows = session.scalars(
            select(TelemetryHourly)
            .where(
                TelemetryHourly.site_id == site_id,
                TelemetryHourly.equipment_id == equipment_id,
                TelemetryHourly.point == point,
                TelemetryHourly.hour >= _hour(since),
                TelemetryHourly.hour < until,
            )
            .order_by(TelemetryHourly.hour)
        )
        return [Point(r.hour, r.total / r.count, r.minimum, r.maximum, r.count) for r in rows]
    samples = session.scalars(
        select(TelemetrySample)
        .where(
            TelemetrySample.site_id == site_id,
            TelemetrySample.equipment_id == equipment_id,
            TelemetrySample.point == point,
            TelemetrySample.ts >= since,
            TelemetrySample.ts < until,
        )
        .order_by(TelemetrySample.ts)
        .limit(10_000)
    )
    return [Point(s.ts, s.value, s.value, s.value, 1) for s in samples]
