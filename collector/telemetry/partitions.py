"""PostgreSQL's day partitions of the packed samples: made before a day is written, dropped
whole when the day is past retention. SQLite keeps one plain table (these do nothing there)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

PARENT = "telemetry_chunks"
_PREFIX = PARENT + "_"


def _name(day: date) -> str:
    return f"{_PREFIX}{day:%Y%m%d}"


def _partitions(session: Session) -> dict[date, str]:
    rows = session.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            f" WHERE i.inhparent = '{PARENT}'::regclass"
        )
    ).scalars()
    found = {}
    for name in rows:
        try:
            found[date(int(name[-8:-4]), int(name[-4:-2]), int(name[-2:]))] = name
        except ValueError:  # a partition someone added by hand: not ours to manage
            continue
    return found


def ensure(session: Session, days: Iterable[date]) -> None:
    """Every one of ``days`` has its partition (made in the session's schema)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    missing = set(days) - set(_partitions(session))
    for day in sorted(missing):
        # The last day Python knows has no next one: its partition is open-ended.
        after = "MAXVALUE" if day == date.max else f"'{day + timedelta(days=1)}'"
        session.execute(
            text(
                f'CREATE TABLE IF NOT EXISTS "{_name(day)}" PARTITION OF {PARENT}'
                f" FOR VALUES FROM ('{day.isoformat()}') TO ({after})"
            )
        )


def drop_before(session: Session, first_kept: date) -> int | None:
    """Drop the partitions of days before ``first_kept``; how many samples they held. None on a
    database without partitions."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    dropped = 0
    for day, name in sorted(_partitions(session).items()):
        if day >= first_kept:
            break
        dropped += int(session.scalar(text(f'SELECT coalesce(sum(n), 0) FROM "{name}"')) or 0)
        session.execute(text(f'DROP TABLE "{name}"'))
    return dropped
