"""The schema: every feature's models module is imported so its tables are known; migrations
(``collector/storage/migrations``) create and change them."""

from __future__ import annotations

import importlib

from sqlalchemy import Engine

# Each feature folder keeps its tables in its own models module.
MODEL_MODULES = (
    "collector.inventory.models",
    "collector.ingest.models",
    "collector.telemetry.models",
    "collector.alarms.models",
    "collector.maintenance.models",
    "collector.inspections.models",
    "collector.tickets.models",
    "collector.problems.models",
    "collector.feed.models",
    "collector.notifications.models",
    "collector.identity.models",
    "collector.revisions.models",
)


def load_models() -> None:
    """Import every models module (registers the tables on ``Base.metadata``)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest schema through the Alembic migrations."""
    from collector.storage.migrate import upgrade_to_head  # alembic imports this module

    load_models()
    upgrade_to_head(engine)
