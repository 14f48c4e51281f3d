"""Creating the schema: every feature's models module is imported so its tables are known."""

from __future__ import annotations

import importlib

from sqlalchemy import Engine

from collector.storage.base import Base

# Each feature folder keeps its tables in its own models module.
MODEL_MODULES = (
    "collector.sites.models",
    "collector.ingest.models",
    "collector.telemetry.models",
    "collector.alarms.models",
    "collector.maintenance.models",
    "collector.tickets.models",
    "collector.feed.models",
    "collector.notifications.models",
    "collector.api.auth_models",
)


def load_models() -> None:
    """Import every models module (registers the tables on ``Base.metadata``)."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet."""
    load_models()
    Base.metadata.create_all(engine)
