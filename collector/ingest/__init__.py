"""Ingest: validate, store by unique key, apply in order, ack after commit, dead-letter the rest."""

from collector.ingest.service import IngestService, IngestStats
from collector.ingest.store import BatchStore, Received

__all__ = ["BatchStore", "IngestService", "IngestStats", "Received"]
