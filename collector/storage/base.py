"""Declarative base and column types; only timezone-aware UTC datetimes are stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and returns them aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _in_utc(value)
        # SQLite has no timezone type: store naive UTC, re-attach UTC on the way out.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, the text SQLAlchemy stores made in one step rather than two.

        Every telemetry sample binds one datetime, and the two steps (to naive UTC here, then
        SQLAlchemy's SQLite DATETIME formatting) cost more than the rest of the sample's insert.
        The one step is used only if it writes exactly what the two would, checked when the
        processor is built, so a storage format changed elsewhere falls back to them.
        """
        composed = super().bind_processor(dialect)
        if dialect.name != "sqlite" or composed is None:
            return composed
        if any(composed(probe) != _sqlite_text(probe) for probe in _PROBES):
            return composed
        return _sqlite_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_text(value: datetime | None) -> str | None:
    """``value`` in UTC as SQLAlchemy's SQLite DATETIME stores it: YYYY-MM-DD HH:MM:SS.ffffff."""
    if value is None:
        return None
    # isoformat pads the year to four digits and, asked for microseconds, always writes them;
    # the 26 characters leave out the "+00:00".
    return _in_utc(value).isoformat(" ", "microseconds")[:26]


def _in_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} cannot be stored: use UTC-aware datetimes")
    return value.astimezone(UTC)


_PROBES = (
    datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 12, 1, 14, 5, 7, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
)


class Base(DeclarativeBase):
    """Base class of every ORM model of the collector."""

    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012
