"""Ingest: validate, store by unique key, apply in order, ack after commit, dead-letter the rest."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collector.ingest.service import IngestService, IngestStats
    from collector.ingest.store import BatchStore, Received

__all__ = ["BatchStore", "IngestService", "IngestStats", "Received"]

_HOMES = {
    "BatchStore": "collector.ingest.store",
    "Received": "collector.ingest.store",
    "IngestService": "collector.ingest.service",
    "IngestStats": "collector.ingest.service",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: the MQTT gateway process (collector.ingest.gateway) starts without
    # loading SQLAlchemy and the alarm engine.
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
