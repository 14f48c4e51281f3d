"""ORM models of collector.sites."""
