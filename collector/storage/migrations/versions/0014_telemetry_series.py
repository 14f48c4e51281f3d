"""Telemetry as time series: a series table, samples packed by series and day (partitioned by
day on PostgreSQL), a staging table, compact message keys; the existing samples and keys moved

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

import collector.storage.base

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _epoch_us(column: str) -> str:
    """SQL for an old-layout datetime column as exact microseconds since the epoch."""
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"
    # SQLAlchemy's SQLite text, YYYY-MM-DD HH:MM:SS.ffffff (no floating point on the way).
    return (
        f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER))"
    )


def _utc_date(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)"
    return f"date({column})"


def upgrade() -> None:
    op.create_table(
        "telemetry_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=False),
        sa.Column("point", sa.String(length=128), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "equipment_id", "point", "unit", name="uq_telemetry_series"),
    )
    op.create_table(
        "telemetry_staging",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "telemetry_chunks",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("last_us", sa.BigInteger(), nullable=False),
        sa.Column("step_us", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("series_id", "day"),
        postgresql_partition_by="RANGE (day)",
    )
    op.create_index("ix_telemetry_chunks_day", "telemetry_chunks", ["day"], postgresql_using="brin")
    op.create_table(
        "telemetry_streams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "stream_id", name="uq_telemetry_stream"),
    )
    # The message keys: the old table aside, the new one filled from it, the old one dropped.
    op.rename_table("telemetry_batches", "telemetry_batches_0013")
    if op.get_bind().dialect.name == "postgresql":  # the name the new table's key takes
        op.execute("ALTER INDEX telemetry_batches_pkey RENAME TO telemetry_batches_0013_pkey")
    op.create_table(
        "telemetry_batches",
        sa.Column("stream_ref", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("stream_ref", "seq"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_telemetry_batches_received_on",
        "telemetry_batches",
        ["received_on"],
        postgresql_using="brin",
    )
    op.execute(
        "INSERT INTO telemetry_streams (agent_id, stream_id)"
        " SELECT DISTINCT agent_id, stream_id FROM telemetry_batches_0013"
    )
    op.execute(
        "INSERT INTO telemetry_batches (stream_ref, seq, received_on)"
        f" SELECT s.id, b.seq, {_utc_date('b.received_at')} FROM telemetry_batches_0013 b"
        " JOIN telemetry_streams s ON s.agent_id = b.agent_id AND s.stream_id = b.stream_id"
    )
    op.drop_table("telemetry_batches_0013")
    # The samples: staged as they are. The scheduler's next runs pack them as they pack every
    # staged sample (a few million a run), aggregating the hours not rolled up yet; until then
    # the series queries read them staged.
    op.execute(
        "INSERT INTO telemetry_series (site_id, equipment_id, point, unit)"
        " SELECT DISTINCT site_id, equipment_id, point, COALESCE(unit, '')"
        " FROM telemetry_samples"
    )
    op.execute(
        "INSERT INTO telemetry_staging (series_id, ts_us, value)"
        f" SELECT s.id, {_epoch_us('t.ts')}, t.value FROM telemetry_samples t"
        " JOIN telemetry_series s ON s.site_id = t.site_id AND s.equipment_id = t.equipment_id"
        " AND s.point = t.point AND s.unit = COALESCE(t.unit, '')"
        " ORDER BY t.id"
    )
    with op.batch_alter_table("telemetry_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_series")
    op.drop_table("telemetry_samples")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<q")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    z = shift = 0
    while True:
        byte = data[i]
        i += 1
        z |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return z, i


def _signed(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def _unpack(day_start_us: int, data: bytes) -> list[tuple[int, float]]:
    """``collector.telemetry.codec.decode`` as of this revision (a migration stands alone)."""
    samples: list[tuple[int, float]] = []
    ts, step, previous, i = day_start_us, 0, 0.0, 0
    while i < len(data):
        z, i = _varint(data, i)
        step += _signed(z)
        ts += step
        z, i = _varint(data, i)
        k = z & 7
        if k == 7:
            value = float(_DOUBLE.unpack_from(data, i)[0])
            i += 8
        else:
            scale = 10**k
            base = (
                round(previous * scale) if math.isfinite(previous) and abs(previous) < 1e15 else 0
            )
            value = (base + _signed(z >> 4)) / scale
            if z & 8:
                u, i = _varint(data, i)
                bits = _BITS.unpack(_DOUBLE.pack(value))[0] + _signed(u)
                value = float(_DOUBLE.unpack(_BITS.pack(bits))[0])
        samples.append((ts, value))
        previous = value
    return samples


def downgrade() -> None:
    op.create_table(
        "telemetry_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=False),
        sa.Column("point", sa.String(length=128), nullable=False),
        sa.Column("ts", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    samples = sa.table(
        "telemetry_samples",
        sa.column("site_id"),
        sa.column("equipment_id"),
        sa.column("point"),
        sa.column("ts", collector.storage.base.UTCDateTime(timezone=True)),
        sa.column("value"),
        sa.column("unit"),
    )
    connection = op.get_bind()
    names = {
        row[0]: row[1:]
        for row in connection.execute(
            sa.text("SELECT id, site_id, equipment_id, point, unit FROM telemetry_series")
        )
    }

    def rows(series_id: int, points: list[tuple[int, float]]) -> list[dict[str, Any]]:
        site, equipment, point, unit = names[series_id]
        return [
            {
                "site_id": site,
                "equipment_id": equipment,
                "point": point,
                "ts": _EPOCH + timedelta(microseconds=ts_us),
                "value": value,
                "unit": unit or None,
            }
            for ts_us, value in points
        ]

    chunks = connection.execute(sa.text("SELECT series_id, day, data FROM telemetry_chunks"))
    for series_id, day, data in chunks.all():
        day = day if isinstance(day, date) else date.fromisoformat(day)
        start = (day.toordinal() - date(1970, 1, 1).toordinal()) * _DAY_US
        connection.execute(samples.insert(), rows(series_id, _unpack(start, bytes(data))))
    staged = connection.execute(sa.text("SELECT series_id, ts_us, value FROM telemetry_staging"))
    for series_id, ts_us, value in staged.all():
        connection.execute(samples.insert(), rows(series_id, [(ts_us, value)]))
    with op.batch_alter_table("telemetry_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telemetry_series", ["site_id", "equipment_id", "point", "ts"], unique=False
        )
    op.create_table(
        "telemetry_batches_0014",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "stream_id", "seq", name="uq_telemetry_batch"),
    )
    # A day is all that is known of when a key was received: its midnight (UTC).
    received = (
        "CAST(b.received_on AS TIMESTAMP) AT TIME ZONE 'UTC'"
        if op.get_bind().dialect.name == "postgresql"
        else "b.received_on || ' 00:00:00.000000'"
    )
    op.execute(
        "INSERT INTO telemetry_batches_0014 (agent_id, stream_id, seq, received_at)"
        f" SELECT s.agent_id, s.stream_id, b.seq, {received} FROM telemetry_batches b"
        " JOIN telemetry_streams s ON s.id = b.stream_ref"
    )
    op.drop_table("telemetry_batches")
    op.rename_table("telemetry_batches_0014", "telemetry_batches")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX telemetry_batches_0014_pkey RENAME TO telemetry_batches_pkey")
    with op.batch_alter_table("telemetry_batches", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_batches_received_at", ["received_at"], unique=False)
    op.drop_table("telemetry_streams")
    op.drop_table("telemetry_chunks")  # its partitions with it
    op.drop_table("telemetry_staging")
    op.drop_table("telemetry_series")
