"""collector.alarms feature."""
