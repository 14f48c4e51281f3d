"""Engines for the embedded default (SQLite in WAL mode) and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while ingest writes. FULL because an ack is published
            # after commit: a commit lost to an OS crash after its ack would lose an alarm.
            # Ingest batches its commits, which pays for the fsync.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)


_TX_CACHE = "shelterwatch.tx_cache"


def tx_cache(session: Session) -> dict[str, Any]:
    """Lookups worth keeping for the current transaction only (dropped at commit/rollback)."""
    cache: dict[str, Any] = session.info.setdefault(_TX_CACHE, {})
    return cache


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _drop_tx_cache(session: Session) -> None:
    session.info.pop(_TX_CACHE, None)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Session factory that keeps loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
