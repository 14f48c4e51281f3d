"""Telemetry storage: raw samples for a retention period, hourly aggregates for years."""
