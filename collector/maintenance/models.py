"""ORM models of collector.maintenance."""
