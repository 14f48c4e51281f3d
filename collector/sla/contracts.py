"""Contracts as data (``contracts/contracts.yaml`` of the data directory): calendar, GTR,
escalations, penalties."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.datadir import CONTRACTS, data_path, load_yaml
from collector.sla.calendar import Calendar, calendar_from_spec


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


class CriticalityProfile(BaseModel):
    """The criticality levels a contract qualifies tickets with, most severe first.

    Each level names its equivalent on the default three-level scale: that is how an alarm's
    criticality (always on the default scale) lands on the profile, and how a ticket keeps its
    meaning when it moves to a contract with another profile.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    levels: dict[str, Literal["critical", "major", "minor"]] = Field(min_length=1)

    def names(self) -> list[str]:
        """The levels, most severe first."""
        return list(self.levels)

    def from_default(self, default_level: str) -> str:
        """The first (most severe) level whose equivalent is ``default_level``."""
        for name, equivalent in self.levels.items():
            if equivalent == default_level:
                return name
        # A profile without that equivalent: the least severe level is the safe reading.
        return self.names()[-1]

    def to_default(self, level: str) -> str:
        """The default-scale equivalent of one of this profile's levels."""
        return self.levels.get(level, "minor")


class Contract(BaseModel):
    """One contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    calendar: Literal["24x7", "working_hours", "urgent_desk"]
    criticality_profile: str = "three-level"
    gtr_min: dict[str, int]
    escalation_fractions: list[float] = Field(min_length=1)
    penalty: Penalty
    # Automatic: the clear of the last cause alarm records the return to nominal. Manual: the
    # NOC confirms it (POST /api/v1/tickets/{ref}/resupervision).
    resupervision: Literal["automatic", "manual"] = "automatic"

    def calendar_obj(self) -> Calendar:
        """The calendar the SLA counts on."""
        return calendar_from_spec(self.calendar)

    def gtr_s(self, criticality: str) -> float:
        """GTR in seconds for a criticality (the longest one when not listed)."""
        minutes = self.gtr_min.get(criticality, max(self.gtr_min.values()))
        return minutes * 60.0


class UnknownCriticality(ValueError):
    """A criticality that the ticket's contract does not define."""


class ContractBook(BaseModel):
    """Every contract by id, and the criticality profiles they use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criticality_profiles: dict[str, CriticalityProfile] = Field(min_length=1)
    contracts: dict[str, Contract]

    @model_validator(mode="after")
    def _profiles_match(self) -> ContractBook:
        for contract_id, contract in self.contracts.items():
            profile = self.criticality_profiles.get(contract.criticality_profile)
            if profile is None:
                known = ", ".join(sorted(self.criticality_profiles))
                raise ValueError(
                    f"contract {contract_id}: unknown criticality_profile"
                    f" {contract.criticality_profile!r} (known: {known})"
                )
            if set(contract.gtr_min) != set(profile.levels):
                raise ValueError(
                    f"contract {contract_id}: gtr_min must give exactly the levels of profile"
                    f" {contract.criticality_profile} ({', '.join(profile.names())}),"
                    f" got {', '.join(contract.gtr_min)}"
                )
        return self

    def profile_of(self, contract_id: str) -> CriticalityProfile:
        """The criticality profile a contract qualifies tickets with."""
        return self.criticality_profiles[self.get(contract_id).criticality_profile]

    def check_level(self, contract_id: str, level: str) -> None:
        """Raise ``UnknownCriticality`` unless ``level`` belongs to the contract's profile."""
        profile = self.profile_of(contract_id)
        if level not in profile.levels:
            raise UnknownCriticality(
                f"criticality {level!r} is not a level of contract {contract_id}"
                f" (profile {self.get(contract_id).criticality_profile}:"
                f" {', '.join(profile.names())})"
            )

    def convert_level(self, level: str, *, from_contract: str, to_contract: str) -> str:
        """The same criticality on another contract's profile (through the default scale)."""
        default_level = self.profile_of(from_contract).to_default(level)
        return self.profile_of(to_contract).from_default(default_level)

    def get(self, contract_id: str) -> Contract:
        """A contract by id, or a clear error."""
        try:
            return self.contracts[contract_id]
        except KeyError as err:
            known = ", ".join(sorted(self.contracts))
            raise KeyError(f"unknown contract {contract_id!r} (known: {known})") from err


def load_contracts(path: Path | None = None) -> ContractBook:
    """The contracts of the data directory in use (or of ``path``); ``DataError`` names the
    file and the field."""
    return _contracts(path or data_path(CONTRACTS))


@lru_cache(maxsize=4)
def _contracts(path: Path) -> ContractBook:
    return load_yaml(path, ContractBook)
