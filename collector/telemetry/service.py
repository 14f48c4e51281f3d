"""Telemetry storage: samples staged on receipt, packed by series and day every few minutes
(``collector.telemetry.codec``), rolled up into hours kept for years, pruned by whole days;
series queries and per-point figures read the packed and the staged samples alike."""

from __future__ import annotations

import typing
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Table, delete, func, select
from sqlalchemy.orm import Session

from collector.storage.base import UTCDateTime
from collector.storage.upsert import dialect_insert
from collector.telemetry import codec, partitions
from collector.telemetry.models import (
    RollupWatermark,
    TelemetryBatch,
    TelemetryChunk,
    TelemetryHourly,
    TelemetrySeries,
    TelemetryStaged,
    TelemetryStream,
)

DEFAULT_RETENTION = timedelta(days=30)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_EPOCH_DAY = date(1970, 1, 1).toordinal()
# Staged samples are packed this many at a time, so a backlog (or the samples an upgrade moved)
# never has to fit in memory at once.
PACK_PIECE = 200_000
# Pieces a scheduler run packs at most: a backlog (an upgrade's samples) takes several runs.
PACK_PIECES = 25
_IN_CHUNK = 500  # keys a look-up sends at once (SQLite's host parameters are limited)
_IDS_AT_ONCE = 5_000
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

SeriesKey = tuple[str, str, str, str]  # site, equipment, point, unit ('' for none)
StreamKey = tuple[str, str]


def to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact)."""
    return (at - EPOCH) // _US


def from_us(us: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def _day(us: int) -> date:
    return date.fromordinal(_EPOCH_DAY + us // _DAY_US)


def _day_us(day: date) -> int:
    return (day.toordinal() - _EPOCH_DAY) * _DAY_US


def _hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def _table(model: type[Any]) -> Table:
    return typing.cast(Table, model.__table__)


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def _ids(session: Session, table: Table, columns: Sequence[str], keys: set[Any]) -> dict[Any, int]:
    """The integer id of each key, rows made for the keys not known yet (by whichever
    instance gets there first: a conflict is someone else's row, read back)."""
    cols = [table.c[name] for name in columns]
    found: dict[Any, int] = {}

    def lookup(wanted: Sequence[Any]) -> None:
        # By the first column only (a site's series, an agent's streams: a handful each), the
        # rest sorted out here: an IN list of strings binds far faster than one of tuples.
        keep = set(wanted)
        for part in _chunks(sorted({key[0] for key in keep})):
            query = select(table.c.id, *cols).where(cols[0].in_(part))
            for row in session.connection().execute(query):
                key = tuple(row[1:])
                if key in keep:
                    found[key] = row[0]

    lookup(sorted(keys))
    missing = sorted(keys - found.keys())
    if missing:
        insert = dialect_insert(session, table).on_conflict_do_nothing()
        session.execute(insert, [dict(zip(columns, key, strict=True)) for key in missing])
        lookup(missing)
    return found


def series_ids(session: Session, keys: set[SeriesKey]) -> dict[SeriesKey, int]:
    """The id of each (site, equipment, point, unit) series, made when new."""
    table = _table(TelemetrySeries)
    return _ids(session, table, ("site_id", "equipment_id", "point", "unit"), keys)


def claim_messages(
    session: Session, messages: Sequence[tuple[str, str, int, datetime]]
) -> set[tuple[str, str, int]]:
    """Record the keys (agent, stream, seq) of telemetry messages received at the given times;
    returns the keys not seen before (the others are re-sends, to be stored no more)."""
    if not messages:
        return set()
    table = _table(TelemetryStream)
    refs = _ids(session, table, ("agent_id", "stream_id"), {(a, s) for a, s, _, _ in messages})
    by_ref = {ref: key for key, ref in refs.items()}
    rows = [
        {"stream_ref": refs[(a, s)], "seq": seq, "received_on": at.astimezone(UTC).date()}
        for a, s, seq, at in messages
    ]
    batches = _table(TelemetryBatch)
    stmt = (
        dialect_insert(session, batches)
        .on_conflict_do_nothing()
        .returning(batches.c.stream_ref, batches.c.seq)
    )
    return {(*by_ref[ref], seq) for ref, seq in session.connection().execute(stmt, rows)}


def store_samples(
    session: Session, samples: Sequence[tuple[str, str, str, str | None, datetime, float]]
) -> None:
    """Stage (site, equipment, point, unit, time, value) samples; they are packed later."""
    if not samples:
        return
    ids = series_ids(session, {(s, e, p, u or "") for s, e, p, u, _, _ in samples})
    rows = [(ids[(s, e, p, u or "")], (at - EPOCH) // _US, v) for s, e, p, u, at, v in samples]
    connection = session.connection()
    marker = _MARKERS.get(connection.dialect.paramstyle)
    if marker is None:  # a driver this was not written for: the generic path
        connection.execute(
            _table(TelemetryStaged).insert(),
            [{"series_id": i, "ts_us": t, "value": v} for i, t, v in rows],
        )
        return
    # Straight to the driver: SQLAlchemy's generic work per row cost more than the insert.
    connection.exec_driver_sql(
        "INSERT INTO telemetry_staging (series_id, ts_us, value)"
        f" VALUES ({marker}, {marker}, {marker})",
        rows,
    )


# -- packing and roll-up -----------------------------------------------------------------


def pack_staged(
    session: Session, *, roll_from: datetime | None, pieces: int = PACK_PIECES
) -> tuple[int, bool]:
    """Move staged samples into their series' day chunks, at most ``pieces`` pieces of
    ``PACK_PIECE``; samples from ``roll_from`` on (all when None) are added to their hour's
    aggregate. Returns how many were packed, and whether the staging is now empty."""
    packed = 0
    floor_us = None if roll_from is None else to_us(roll_from)
    connection = session.connection()
    take = (
        "DELETE FROM telemetry_staging WHERE id IN"
        " (SELECT id FROM telemetry_staging ORDER BY id LIMIT ?)"
        " RETURNING series_id, ts_us, value"
    ).replace("?", _MARKERS[connection.dialect.paramstyle])
    for _ in range(pieces):
        # Straight from the driver: a piece is a few hundred thousand rows.
        rows = connection.exec_driver_sql(take, (PACK_PIECE,)).fetchall()
        packed += len(rows)
        samples: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for series_id, ts_us, value in rows:
            samples[series_id].append((ts_us, value))
        _append(session, samples)
        _accumulate(session, samples, floor_us)
        if len(rows) < PACK_PIECE:
            return packed, True
    return packed, False


def _append(session: Session, samples: dict[int, list[tuple[int, float]]]) -> None:
    by_chunk: dict[tuple[int, date], list[tuple[int, float]]] = defaultdict(list)
    for series_id, points in samples.items():
        for point in sorted(points, key=lambda p: p[0]):
            by_chunk[(series_id, _day(point[0]))].append(point)
    tails: dict[tuple[int, date], tuple[int, codec.Tail]] = {}
    days = sorted({day for _, day in by_chunk})
    # Plain IN lists of ids and days (the days are one or two): far cheaper to bind than pairs.
    for part in _chunks(sorted(samples), _IDS_AT_ONCE):
        query = select(
            TelemetryChunk.series_id,
            TelemetryChunk.day,
            TelemetryChunk.n,
            TelemetryChunk.last_us,
            TelemetryChunk.step_us,
            TelemetryChunk.last_value,
        ).where(TelemetryChunk.series_id.in_(part), TelemetryChunk.day.in_(days))
        for series_id, day, n, last_us, step_us, last_value in session.connection().execute(query):
            if (series_id, day) in by_chunk:
                tails[(series_id, day)] = (n, codec.Tail(last_us, step_us, last_value))
    new: list[tuple[Any, ...]] = []
    grown: list[tuple[Any, ...]] = []
    for (series_id, day), points in by_chunk.items():
        n, tail = tails.get((series_id, day), (0, codec.start(_day_us(day))))
        data, tail = codec.append(tail, points)
        values = (n + len(points), tail.ts_us, tail.step_us, tail.value, data)
        if n:
            grown.append((*values, series_id, day))
        else:
            new.append((series_id, day, *values))
    postgresql = session.get_bind().dialect.name == "postgresql"
    if new:
        partitions.ensure(session, {row[1] for row in new})
        _many(
            session,
            "INSERT INTO telemetry_chunks (series_id, day, n, last_us, step_us, last_value, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            new,
            dates=(1,),
        )
    if grown:
        # SQLite's || makes text of two blobs: cast back, the bytes are the same.
        appended = "data || ?" if postgresql else "CAST(data || ? AS BLOB)"
        _many(
            session,
            "UPDATE telemetry_chunks SET n = ?, last_us = ?, step_us = ?, last_value = ?,"
            f" data = {appended} WHERE series_id = ? AND day = ?",
            grown,
            dates=(6,),
        )


def _many(
    session: Session,
    sql: str,
    rows: list[tuple[Any, ...]],
    *,
    dates: Sequence[int] = (),
    datetimes: Sequence[int] = (),
) -> None:
    """One executemany straight to the driver (``?`` markers): SQLAlchemy's work per row cost
    more than the statement. Dates and datetimes are bound by the column types' own
    processors, so what is stored is what SQLAlchemy stores."""
    connection = session.connection()
    dialect = connection.dialect
    kinds: tuple[tuple[Sequence[int], Any], ...] = ((dates, Date()), (datetimes, UTCDateTime()))
    for positions, kind in kinds:
        processor = kind.dialect_impl(dialect).bind_processor(dialect)
        if processor is None:
            continue
        for i in positions:
            rows = [(*row[:i], processor(row[i]), *row[i + 1 :]) for row in rows]
    connection.exec_driver_sql(sql.replace("?", _MARKERS[dialect.paramstyle]), rows)


def _names(session: Session, ids: Iterable[int]) -> dict[int, SeriesKey]:
    names: dict[int, SeriesKey] = {}
    for part in _chunks(sorted(ids), _IDS_AT_ONCE):
        query = select(
            TelemetrySeries.id,
            TelemetrySeries.site_id,
            TelemetrySeries.equipment_id,
            TelemetrySeries.point,
            TelemetrySeries.unit,
        ).where(TelemetrySeries.id.in_(part))
        for row in session.connection().execute(query):
            names[row[0]] = tuple(row[1:])  # type: ignore[assignment]
    return names


def _accumulate(
    session: Session, samples: dict[int, list[tuple[int, float]]], floor_us: int | None
) -> None:
    """Add samples to their hours' aggregates (an hour is shown once the watermark passes it)."""
    names = _names(session, samples)
    hours: dict[tuple[str, str, str, int], list[float]] = {}
    for series_id, points in samples.items():
        site, equipment, point, _unit = names[series_id]
        for ts_us, value in points:
            if floor_us is not None and ts_us < floor_us:
                continue  # its hour is rolled already: kept raw, not rolled again
            key = (site, equipment, point, ts_us - ts_us % _HOUR_US)
            agg = hours.get(key)
            if agg is None:
                hours[key] = [1, value, value, value]
            else:
                agg[0] += 1
                agg[1] = min(agg[1], value)
                agg[2] = max(agg[2], value)
                agg[3] += value
    if not hours:
        return
    lowest, highest = (
        ("least", "greatest") if session.get_bind().dialect.name == "postgresql" else ("min", "max")
    )
    _many(
        session,
        "INSERT INTO telemetry_hourly"
        " (site_id, equipment_id, point, hour, count, minimum, maximum, total)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (site_id, equipment_id, point, hour) DO UPDATE SET"
        " count = telemetry_hourly.count + excluded.count,"
        f" minimum = {lowest}(telemetry_hourly.minimum, excluded.minimum),"
        f" maximum = {highest}(telemetry_hourly.maximum, excluded.maximum),"
        " total = telemetry_hourly.total + excluded.total",
        [
            (site, equipment, point, from_us(hour_us), *agg)
            for (site, equipment, point, hour_us), agg in hours.items()
        ],
        datetimes=(3,),
    )


def rollup_and_prune(
    session: Session, *, now: datetime, retention: timedelta = DEFAULT_RETENTION
) -> tuple[int, int]:
    """Pack the staged samples, complete every hour not rolled yet, then drop raw samples past
    retention (whole UTC days) and the keys that deduplicated their messages.

    Returns (hours completed, raw samples dropped). The watermark trails the current hour by
    one, so samples buffered at the edge during a short outage still make their hour; a sample
    later than that is kept raw but its hour is not rolled again.
    """
    mark = session.get(RollupWatermark, "hourly", with_for_update=True)
    until = _hour(now) - timedelta(hours=1)
    rolled = mark.rolled_until if mark is not None else None
    staged_from = session.scalar(select(func.min(TelemetryStaged.ts_us))) if mark is None else None
    _, drained = pack_staged(session, roll_from=rolled)
    partitions.ensure(session, {now.date(), (now + timedelta(days=1)).date()})
    start = rolled
    if mark is None:
        first_hour = session.scalar(select(func.min(TelemetryHourly.hour)))
        candidates = [t for t in (first_hour, from_us(staged_from) if staged_from else None) if t]
        start = min(candidates) if candidates else None
    written = 0
    # An hour is complete once every staged sample of it is packed and counted.
    if drained and start is not None and start < until:
        written = int(
            session.scalar(
                select(func.count())
                .select_from(TelemetryHourly)
                .where(TelemetryHourly.hour >= _hour(start), TelemetryHourly.hour < until)
            )
            or 0
        )
        if mark is None:
            session.add(RollupWatermark(name="hourly", rolled_until=until))
        else:
            mark.rolled_until = until
    return written, _prune(session, before=min(now - retention, until), keys_before=now - retention)


def _prune(session: Session, *, before: datetime, keys_before: datetime) -> int:
    """Drop the days that ended by ``before``; the message keys received before ``keys_before``
    (a re-send older than the retention would only store samples pruned at the next run)."""
    first_kept = before.astimezone(UTC).date()
    dropped = partitions.drop_before(session, first_kept)
    if dropped is None:
        gone = session.execute(
            delete(TelemetryChunk)
            .where(TelemetryChunk.day < first_kept)
            .returning(TelemetryChunk.n)
        ).scalars()
        dropped = sum(gone)
    session.execute(
        delete(TelemetryBatch).where(
            TelemetryBatch.received_on < keys_before.astimezone(UTC).date()
        )
    )
    return dropped


# -- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One point of a series (raw: min = max = mean = value)."""

    at: datetime
    mean: float
    minimum: float
    maximum: float
    count: int


def _samples(
    session: Session, series: dict[int, SeriesKey], *, since: datetime, until: datetime
) -> dict[int, list[tuple[int, float]]]:
    """Each series' samples in [since, until), packed and staged, in time order."""
    lo, hi = to_us(since), to_us(until)
    found: dict[int, list[tuple[int, float]]] = {i: [] for i in series}
    if not series or lo >= hi:
        return found
    ids = sorted(series)
    chunks = session.execute(
        select(TelemetryChunk.series_id, TelemetryChunk.day, TelemetryChunk.data).where(
            TelemetryChunk.series_id.in_(ids),
            TelemetryChunk.day >= _day(lo),
            TelemetryChunk.day <= _day(hi - 1),
        )
    )
    for series_id, day, data in chunks:
        found[series_id].extend(
            p for p in codec.decode(_day_us(day), bytes(data)) if lo <= p[0] < hi
        )
    staged = session.execute(
        select(TelemetryStaged.series_id, TelemetryStaged.ts_us, TelemetryStaged.value).where(
            TelemetryStaged.series_id.in_(ids),
            TelemetryStaged.ts_us >= lo,
            TelemetryStaged.ts_us < hi,
        )
    )
    for series_id, ts_us, value in staged:
        found[series_id].append((ts_us, value))
    for points in found.values():
        points.sort(key=lambda p: p[0])
    return found


def _series_of(session: Session, *conditions: Any) -> dict[int, SeriesKey]:
    query = select(
        TelemetrySeries.id,
        TelemetrySeries.site_id,
        TelemetrySeries.equipment_id,
        TelemetrySeries.point,
        TelemetrySeries.unit,
    ).where(*conditions)
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}  # type: ignore[misc]


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
        mark = session.get(RollupWatermark, "hourly")
        if mark is None:
            return []
        rows = session.scalars(
            select(TelemetryHourly)
            .where(
                TelemetryHourly.site_id == site_id,
                TelemetryHourly.equipment_id == equipment_id,
                TelemetryHourly.point == point,
                TelemetryHourly.hour >= _hour(since),
                TelemetryHourly.hour < min(until, mark.rolled_until),
            )
            .order_by(TelemetryHourly.hour)
        )
        return [Point(r.hour, r.total / r.count, r.minimum, r.maximum, r.count) for r in rows]
    found = _samples(
        session,
        _series_of(
            session,
            TelemetrySeries.site_id == site_id,
            TelemetrySeries.equipment_id == equipment_id,
            TelemetrySeries.point == point,
        ),
        since=since,
        until=until,
    )
    # A point sent in two units is two series: one line, in time order.
    merged = sorted((p for points in found.values() for p in points), key=lambda p: p[0])
    return [Point(from_us(t), v, v, v, 1) for t, v in merged[:10_000]]


@dataclass(frozen=True)
class PointFigures:
    """Raw samples of one point over a period: how many, min, mean, max, unit."""

    point: str
    samples: int
    minimum: float
    mean: float
    maximum: float
    unit: str | None


def equipment_figures(
    session: Session, *, site_id: str, equipment_id: str, since: datetime, until: datetime
) -> list[PointFigures]:
    """Per point of an equipment, its raw samples' figures over [since, until), by point."""
    known = _series_of(
        session,
        TelemetrySeries.site_id == site_id,
        TelemetrySeries.equipment_id == equipment_id,
    )
    found = _samples(session, known, since=since, until=until)
    by_point: dict[str, list[float]] = defaultdict(list)
    units: dict[str, set[str]] = defaultdict(set)
    for series_id, points in found.items():
        _site, _equipment, point, unit = known[series_id]
        if points:
            by_point[point].extend(v for _, v in points)
            if unit:
                units[point].add(unit)
    return [
        PointFigures(
            point=point,
            samples=len(values),
            minimum=min(values),
            mean=sum(values) / len(values),
            maximum=max(values),
            unit=max(units[point]) if units[point] else None,
        )
        for point, values in sorted(by_point.items())
    ]


def sample_count(session: Session) -> int:
    """How many raw samples are stored (packed and staged)."""
    packed = session.scalar(select(func.coalesce(func.sum(TelemetryChunk.n), 0)))
    staged = session.scalar(select(func.count()).select_from(TelemetryStaged))
    return int(packed or 0) + int(staged or 0)


def sample_rows(session: Session) -> Iterable[tuple[SeriesKey, list[tuple[int, float]]]]:
    """Every series with all its raw samples (microseconds, value), in time order: one series
    in memory at a time (for a downgrade to the row-per-sample layout)."""
    known = _series_of(session)
    for series_id in sorted(known):
        found = _samples(
            session,
            {series_id: known[series_id]},
            since=datetime.min.replace(tzinfo=UTC),
            until=datetime.max.replace(tzinfo=UTC),
        )
        yield known[series_id], found[series_id]
