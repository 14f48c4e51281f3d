"""Schema migrations (Alembic): every database, SQLite or PostgreSQL, is brought to head.

New migration after a model change::

    .venv/bin/alembic revision --autogenerate -m "what changed"

(``alembic.ini`` at the repository root; ``SHELTERWATCH_DB_URL`` names the database to diff.)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic configuration pointing at the collector's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration the database has not had yet (idempotent)."""
    from collector.storage.locks import lock

    config = alembic_config()
    with engine.begin() as connection:
        # Instances starting together: the first migrates, the others then find it at head.
        lock(connection, "migrations")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with the code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
