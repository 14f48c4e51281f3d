"""collector.tickets feature."""
