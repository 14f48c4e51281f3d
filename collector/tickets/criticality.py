"""Alarm -> ticket criticality, as data (``contracts/alarm_criticality.yaml``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


class CriticalityMap(BaseModel):
    """Criticality per alarm type, with a fallback from the edge severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_from_severity: dict[str, str]
    alarm_types: dict[str, str]

    def for_alarm(self, *, alarm_type: str, severity: str) -> str:
        """The criticality of a ticket opened from this alarm."""
        return self.alarm_types.get(alarm_type) or self.default_from_severity.get(severity, "minor")


@lru_cache(maxsize=4)
def load_criticality_map(path: Path = CONTRACTS_DIR / "alarm_criticality.yaml") -> CriticalityMap:
    """Load and validate the mapping file."""
    return CriticalityMap.model_validate(yaml.safe_load(path.read_text()))
