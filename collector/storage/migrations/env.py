"""Alembic environment: the collector's models are the target; the connection is given by
``collector.storage.migrate`` (or ``sqlalchemy.url`` / ``SHELTERWATCH_DB_URL`` from the CLI)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine

from collector.storage.base import Base
from collector.storage.schema import load_models

load_models()
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the given connection, or one opened from the configured URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "SHELTERWATCH_DB_URL", "sqlite:///shelterwatch.db"
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported: give a database URL")
run_migrations_online()
