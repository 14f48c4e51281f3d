"""Edge alarm evaluation: pure logic from readings to alarm transitions (works offline)."""

from agent.evaluation.contact import ContactEvaluator

__all__ = ["ContactEvaluator"]
