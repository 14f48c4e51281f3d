"""Raw telemetry samples (bounded by retention) and hourly aggregates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class TelemetrySample(Base):
    """One raw sample as measured at the edge."""

    __tablename__ = "telemetry_samples"
    __table_args__ = (Index("ix_telemetry_series", "site_id", "equipment_id", "point", "ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128))
    equipment_id: Mapped[str] = mapped_column(String(128))
    point: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime]
    value: Mapped[float]
    unit: Mapped[str | None] = mapped_column(String(16), nullable=True)


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


class TelemetryBatch(Base):
    """The key of a stored telemetry message, so a re-send stores nothing twice."""

    __tablename__ = "telemetry_batches"
    __table_args__ = (
        UniqueConstraint("agent_id", "stream_id", "seq", name="uq_telemetry_batch"),
        # Keys are pruned with the raw samples they stood for (``collector.telemetry.service``).
        Index("ix_telemetry_batches_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    stream_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
