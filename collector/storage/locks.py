"""Named locks for work that must run once across collector instances.

On PostgreSQL these are the database's own transaction-scoped advisory locks: released by
commit or rollback, so a killed instance never leaves one behind, and seen by PostgreSQL's
deadlock detector. The key is derived from the schema as well as the name, so deployments
sharing a database in separate schemas (the tests do) do not block each other.

SQLite needs none: it runs one writing transaction at a time for the whole database, and an
embedded collector is a single instance.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

_KEY = "hashtextextended(current_schema() || ':' || :name, 0)"


def _postgresql(session: Session | Connection) -> bool:
    bind = session if isinstance(session, Connection) else session.get_bind()
    return bind.dialect.name == "postgresql"


def try_lock(session: Session | Connection, name: str) -> bool:
    """Take the lock ``name`` for this transaction if it is free; False if another holds it."""
    if not _postgresql(session):
        return True
    return bool(session.scalar(text(f"SELECT pg_try_advisory_xact_lock({_KEY})"), {"name": name}))


def lock(session: Session | Connection, name: str) -> None:
    """Wait for the lock ``name`` and hold it until this transaction ends (re-entrant)."""
    if _postgresql(session):
        session.execute(text(f"SELECT pg_advisory_xact_lock({_KEY})"), {"name": name})
