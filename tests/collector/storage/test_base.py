"""UTCDateTime: what is stored on SQLite, and that it reads back as the instant written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from collector.storage.base import UTCDateTime

_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_AWARE = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_OFFSETS
)


class _TwoSteps(TypeDecorator[datetime]):
    """UTCDateTime's conversion as SQLAlchemy composes it: its own processor, then the impl's."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return UTCDateTime().process_bind_param(value, sqlite.dialect())


def _processor(kind: TypeDecorator[datetime]) -> object:
    dialect = sqlite.dialect()
    return kind.dialect_impl(dialect).bind_processor(dialect)


@settings(max_examples=500, deadline=None)
@given(_AWARE)
def test_the_one_step_on_sqlite_stores_what_the_two_steps_store(value: datetime) -> None:
    one, two = _processor(UTCDateTime()), _processor(_TwoSteps())
    assert callable(one) and callable(two)
    assert one(value) == two(value)


def test_a_naive_datetime_is_refused_by_name() -> None:
    one = _processor(UTCDateTime())
    assert callable(one)
    with pytest.raises(ValueError, match="naive datetime"):
        one(datetime(2026, 1, 1, 12, 0))


def test_what_is_written_reads_back_as_the_same_instant_in_utc() -> None:
    engine = create_engine("sqlite://")
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime())
    )
    table.metadata.create_all(engine)
    paris = timezone(timedelta(hours=1))
    written = datetime(2026, 12, 1, 15, 4, 5, 0, tzinfo=paris)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": 1, "at": written}, {"id": 2, "at": None}])
        stored = conn.execute(text("SELECT at FROM t WHERE id = 1")).scalar_one()
        back = {i: at for i, at in conn.execute(select(table.c.id, table.c.at))}
    assert stored == "2026-12-01 14:04:05.000000"
    assert back == {1: written, 2: None}
    assert back[1].tzinfo is UTC
