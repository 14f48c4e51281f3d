"""collector.maintenance feature."""
