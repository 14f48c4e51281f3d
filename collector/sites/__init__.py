"""collector.sites feature."""
