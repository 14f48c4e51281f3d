"""Contracts as data (``contracts/contracts.yaml``): calendar, GTR, escalations, penalties."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collector.sla.calendar import Calendar, calendar_from_spec

CONTRACTS_FILE = Path(__file__).resolve().parents[2] / "contracts" / "contracts.yaml"


class Penalty(BaseModel):
    """Penalty per started hour past the GTR, capped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_started_hour_late_eur: float = Field(ge=0)
    cap_eur: float = Field(ge=0)

    def amount(self, late_s: float) -> float:
        """Penalty for being ``late_s`` seconds past the deadline."""
        if late_s <= 0:
            return 0.0
        return min(self.cap_eur, math.ceil(late_s / 3600) * self.per_started_hour_late_eur)


class Contract(BaseModel):
    """One contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    calendar: Literal["24x7", "working_hours", "urgent_desk"]
    gtr_min: dict[str, int]
    escalation_fractions: list[float] = Field(min_length=1)
    penalty: Penalty

    def calendar_obj(self) -> Calendar:
        """The calendar the SLA counts on."""
        return calendar_from_spec(self.calendar)

    def gtr_s(self, criticality: str) -> float:
        """GTR in seconds for a criticality (the longest one when not listed)."""
        minutes = self.gtr_min.get(criticality, max(self.gtr_min.values()))
        return minutes * 60.0


class ContractBook(BaseModel):
    """Every contract by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contracts: dict[str, Contract]

    def get(self, contract_id: str) -> Contract:
        """A contract by id, or a clear error."""
        try:
            return self.contracts[contract_id]
        except KeyError as err:
            known = ", ".join(sorted(self.contracts))
            raise KeyError(f"unknown contract {contract_id!r} (known: {known})") from err


@lru_cache(maxsize=4)
def load_contracts(path: Path = CONTRACTS_FILE) -> ContractBook:
    """Load and validate the contracts file; errors name the file and the field."""
    try:
        return ContractBook.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from err
