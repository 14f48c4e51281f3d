"""ORM models of collector.tickets."""
