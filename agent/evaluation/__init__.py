"""Edge alarm evaluation: pure logic from readings to alarm transitions (works offline)."""

from agent.evaluation.contact import ContactEvaluator
from agent.evaluation.threshold import BitEvaluator, TelemetryGate, ThresholdEvaluator

__all__ = ["BitEvaluator", "ContactEvaluator", "TelemetryGate", "ThresholdEvaluator"]
