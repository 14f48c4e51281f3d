"""Inspections: preventive-maintenance visits during which sensor triggers are test results."""
