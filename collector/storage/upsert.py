"""INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(session: Session, model: Any) -> Any:
    """An INSERT into ``model`` (a mapped class or a table) in the session's dialect, the kind
    that has ``on_conflict_do_nothing``."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return builder(model)


def insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """Insert unless a unique key already has the row; True when a row was inserted."""
    result = session.execute(
        dialect_insert(session, model).values(**values).on_conflict_do_nothing()
    )
    return bool(getattr(result, "rowcount", 0) == 1)
