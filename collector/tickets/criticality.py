"""Alarm -> ticket criticality, as data (``contracts/alarm_criticality.yaml`` of the data
directory)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from collector.datadir import ALARM_CRITICALITY, data_path, load_yaml
from collector.sla.contracts import load_contracts


class CriticalityMap(BaseModel):
    """Criticality per alarm type (default scale), with a fallback from the edge severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_from_severity: dict[str, str]
    alarm_types: dict[str, str]
    # Alarm types whose return to nominal the NOC confirms by hand (re-supervision).
    manual_resupervision: frozenset[str] = Field(default_factory=frozenset)

    def for_alarm(self, *, alarm_type: str, severity: str) -> str:
        """The default-scale criticality of a ticket opened from this alarm."""
        return self.alarm_types.get(alarm_type) or self.default_from_severity.get(severity, "minor")


def load_criticality_map(path: Path | None = None) -> CriticalityMap:
    """The mapping of the data directory in use (or of ``path``), validated."""
    return _criticality_map(path or data_path(ALARM_CRITICALITY))


@lru_cache(maxsize=4)
def _criticality_map(path: Path) -> CriticalityMap:
    return load_yaml(path, CriticalityMap)


def criticality_for_alarm(*, contract_id: str, alarm_type: str, severity: str) -> str:
    """The criticality of a ticket opened from an alarm, on its contract's profile."""
    default_level = load_criticality_map().for_alarm(alarm_type=alarm_type, severity=severity)
    return load_contracts().profile_of(contract_id).from_default(default_level)


def more_severe(candidate: str, than: str, *, contract_id: str) -> bool:
    """True when ``candidate`` is strictly more severe than ``than`` on the contract's profile."""
    names = load_contracts().profile_of(contract_id).names()
    if candidate not in names or than not in names:
        return False
    return names.index(candidate) < names.index(than)
