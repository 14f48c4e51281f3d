"""Telemetry retention: raw samples for a while, hourly aggregates for years; series queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from collector.telemetry.models import RollupWatermark, TelemetryHourly, TelemetrySample

DEFAULT_RETENTION = timedelta(days=30)


def _hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def rollup_and_prune(
    session: Session, *, now: datetime, retention: timedelta = DEFAULT_RETENTION
) -> tuple[int, int]:
    """Aggregate every complete hour not rolled yet, then drop raw samples past retention.

    Returns (hours written, raw samples deleted). Late samples of an hour already rolled are
    added to that hour's aggregate on the next run only if they arrive before the watermark
    moves on; the watermark trails the current hour so ordinary lateness is covered.
    """
    mark = session.get(RollupWatermark, "hourly", with_for_update=True)
    # One hour of slack: samples buffered at the edge during a short outage still make it.
    until = _hour(now) - timedelta(hours=1)
    start = (
        mark.rolled_until
        if mark is not None
        else session.scalar(select(func.min(TelemetrySample.ts)))
    )
    written = 0
    if start is not None and start < until:
        hour = func.strftime("%Y-%m-%d %H:00:00", TelemetrySample.ts)
        if session.get_bind().dialect.name == "postgresql":
            hour = func.date_trunc("hour", TelemetrySample.ts)
        rows = session.execute(
            select(
                TelemetrySample.site_id,
                TelemetrySample.equipment_id,
                TelemetrySample.point,
                hour,
                func.count(),
                func.min(TelemetrySample.value),
                func.max(TelemetrySample.value),
                func.sum(TelemetrySample.value),
            )
            .where(TelemetrySample.ts >= _hour(start), TelemetrySample.ts < until)
            .group_by(
                TelemetrySample.site_id, TelemetrySample.equipment_id, TelemetrySample.point, hour
            )
        ).all()
        for site, equipment, point, h, n, lo, hi, total in rows:
            hour_dt = h if isinstance(h, datetime) else datetime.fromisoformat(f"{h}+00:00")
            existing = session.scalars(
                select(TelemetryHourly).where(
                    TelemetryHourly.site_id == site,
                    TelemetryHourly.equipment_id == equipment,
                    TelemetryHourly.point == point,
                    TelemetryHourly.hour == hour_dt,
                )
            ).first()
            if existing is None:
                session.add(
                    TelemetryHourly(
                        site_id=site,
                        equipment_id=equipment,
                        point=point,
                        hour=hour_dt,
                        count=n,
                        minimum=lo,
                        maximum=hi,
                        total=total,
                    )
                )
                written += 1
        if mark is None:
            session.add(RollupWatermark(name="hourly", rolled_until=until))
        else:
            mark.rolled_until = until
    pruned = session.execute(
        delete(TelemetrySample).where(TelemetrySample.ts < min(now - retention, until))
    )
    return written, int(getattr(pruned, "rowcount", 0) or 0)


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
