"""ORM models of collector.ingest."""
