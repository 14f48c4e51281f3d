"""collector.ingest feature."""
