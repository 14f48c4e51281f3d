"""Telemetry as time series: series with integer ids, samples packed a series and a day to a
row (``collector.telemetry.codec``), a staging table for what is not packed yet, the keys that
deduplicate messages, and hourly aggregates kept for years.

On PostgreSQL the packed samples are partitioned by day (``collector.telemetry.partitions``):
retention drops a day's partition instead of deleting rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class TelemetrySeries(Base):
    """One series: a point of an equipment of a site, in one unit ('' when none was sent)."""

    __tablename__ = "telemetry_series"
    __table_args__ = (
        UniqueConstraint("site_id", "equipment_id", "point", "unit", name="uq_telemetry_series"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128))
    equipment_id: Mapped[str] = mapped_column(String(128))
    point: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str] = mapped_column(String(16))


class TelemetryStaged(Base):
    """A sample stored on receipt and not packed yet; the scheduler packs and removes it within
    minutes (``collector.telemetry.service.rollup_and_prune``)."""

    __tablename__ = "telemetry_staging"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    series_id: Mapped[int] = mapped_column(Integer)
    ts_us: Mapped[int] = mapped_column(BigInteger)  # microseconds since the epoch, UTC
    value: Mapped[float]


class TelemetryChunk(Base):
    """The samples of one series on one UTC day, packed (``collector.telemetry.codec``).

    ``n`` counts them; ``last_us``, ``step_us`` and ``last_value`` are where the packing stands,
    so appending reads none of what is already packed.
    """

    __tablename__ = "telemetry_chunks"
    __table_args__ = (
        # Time-only scans (a day of every series): a BRIN, a few pages for a whole partition.
        Index("ix_telemetry_chunks_day", "day", postgresql_using="brin"),
        # A rowid table on SQLite: a day of a series (a kilobyte or more) stays in its page,
        # where a WITHOUT ROWID row that size spills into an overflow page of its own.
        {"postgresql_partition_by": "RANGE (day)"},
    )

    series_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    last_us: Mapped[int] = mapped_column(BigInteger)
    step_us: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float]
    data: Mapped[bytes] = mapped_column(LargeBinary)


class TelemetryHourly(Base):
    """Hourly aggregate of a series, kept for years after raw samples are pruned."""

    __tablename__ = "telemetry_hourly"
    __table_args__ = (
        UniqueConstraint("site_id", "equipment_id", "point", "hour", name="uq_telemetry_hour"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128))
    equipment_id: Mapped[str] = mapped_column(String(128))
    point: Mapped[str] = mapped_column(String(128))
    hour: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)
    minimum: Mapped[float]
    maximum: Mapped[float]
    total: Mapped[float]


class RollupWatermark(Base):
    """Up to where raw samples have been rolled up into hours."""

    __tablename__ = "telemetry_rollup"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    rolled_until: Mapped[datetime]


class TelemetryStream(Base):
    """An agent's outbox stream, by a small integer the message keys refer to."""

    __tablename__ = "telemetry_streams"
    __table_args__ = (UniqueConstraint("agent_id", "stream_id", name="uq_telemetry_stream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    stream_id: Mapped[str] = mapped_column(String(32))


class TelemetryBatch(Base):
    """The key of a stored telemetry message, so a re-send stores nothing twice."""

    __tablename__ = "telemetry_batches"
    __table_args__ = (
        # Keys are pruned with the raw samples they stood for (``collector.telemetry.service``);
        # they are written in time order, so a BRIN finds a day's keys on PostgreSQL.
        Index(
            "ix_telemetry_batches_received_on",
            "received_on",
            postgresql_using="brin",
        ),
        {"sqlite_with_rowid": False},
    )

    stream_ref: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_on: Mapped[date] = mapped_column(Date)
