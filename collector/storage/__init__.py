"""SQL storage shared by the collector's feature folders (SQLite embedded, PostgreSQL)."""

from collector.storage.base import Base, UTCDateTime
from collector.storage.engine import make_engine, make_session_factory, tx_cache

__all__ = ["Base", "UTCDateTime", "make_engine", "make_session_factory", "tx_cache"]
