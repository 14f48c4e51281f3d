"""ORM models of collector.alarms."""
