"""Correlation rules as data (``rules/alarm_rules.yaml`` of the data directory): flapping,
suppression, storms."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from collector.datadir import ALARM_RULES, data_path, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlappingRule(_Strict):
    """N transitions within a window."""

    transitions: int = Field(ge=2)
    window_s: float = Field(gt=0)


class SuppressionRule(_Strict):
    """A cause alarm suppresses these symptom types at the same site."""

    cause: str
    symptoms: list[str]


class StormRule(_Strict):
    """The same cause at K+ sites within a window: one generic incident."""

    alarm_types: list[str]
    min_sites: int = Field(ge=2)
    window_s: float = Field(gt=0)


class ProblemRule(_Strict):
    """This many occurrences of one fault (site, equipment, alarm type) within the window make
    the collector propose a problem record to the NOC."""

    occurrences: int = Field(ge=2)
    window_days: float = Field(gt=0)


class AlarmRules(_Strict):
    """Every correlation rule."""

    flapping: FlappingRule
    never_suppressed: list[str] = Field(default_factory=list)
    suppression: list[SuppressionRule] = Field(default_factory=list)
    storm: StormRule
    problem: ProblemRule = ProblemRule(occurrences=3, window_days=30)

    def causes_of(self, alarm_type: str) -> list[str]:
        """Cause types that suppress ``alarm_type`` (none for never-suppressed types)."""
        if alarm_type in self.never_suppressed:
            return []
        return [r.cause for r in self.suppression if alarm_type in r.symptoms]

    def symptoms_of(self, cause: str) -> list[str]:
        """Symptom types a cause suppresses."""
        return [
            s
            for r in self.suppression
            if r.cause == cause
            for s in r.symptoms
            if s not in self.never_suppressed
        ]


def load_rules(path: Path | None = None) -> AlarmRules:
    """The rules of the data directory in use (or of ``path``); ``DataError`` names the file
    and the field."""
    return _rules(path or data_path(ALARM_RULES))


@lru_cache(maxsize=4)
def _rules(path: Path) -> AlarmRules:
    return load_yaml(path, AlarmRules)
