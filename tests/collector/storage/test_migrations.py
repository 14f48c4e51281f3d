"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from collector.storage import Base, make_engine
from collector.storage.migrate import alembic_config, current_revision, head_revision
from collector.storage.schema import create_schema, load_models


def _differences(engine: Engine) -> list[object]:
    load_models()
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_a_new_sqlite_database_is_migrated_to_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert current_revision(engine) is None
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    assert _differences(engine) == []  # a model changed without a migration shows up here
    create_schema(engine)  # a restart migrates nothing more and loses nothing
    assert current_revision(engine) == head_revision()
    assert "tickets" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_postgresql_database_is_migrated_to_the_models(pg_url: str) -> None:
    engine = make_engine(pg_url)  # a schema of its own, empty
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    assert _differences(engine) == []
    engine.dispose()


@pytest.mark.parametrize("table", ["equipment", "ticket_clock_events", "notifications"])
def test_every_feature_has_its_tables(tmp_path: Path, table: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_schema(engine)
    assert table in inspect(engine).get_table_names()
    engine.dispose()


OLD_SITE = text(
    """INSERT INTO sites (site_id, kind, name, region, address)
    VALUES (:s, 'pm', '', 'r', '')"""
)


def test_an_older_database_is_upgraded_in_place_keeping_its_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(OLD_SITE, {"s": "PM-OLD-1"})
    assert "ix_alarms_type_transition" not in _indexes(engine, "alarms")
    create_schema(engine)  # what the collector does at start
    assert current_revision(engine) == head_revision()
    assert "ix_alarms_type_transition" in _indexes(engine, "alarms")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT site_id FROM sites")).scalars().all() == ["PM-OLD-1"]
    engine.dispose()


def _indexes(engine: Engine, table: str) -> set[str]:
    return {str(i["name"]) for i in inspect(engine).get_indexes(table)}
