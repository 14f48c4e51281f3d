"""Scenario files (YAML): sites, a timeline of actions, and expectations — validated at load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file, the path and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactAction(_Strict):
    """Open or close a GPIO contact (door, fire relay, mains relay...) of an agent."""

    action: Literal["contact"]
    agent: str
    point: str
    active: bool


class ProcessAction(_Strict):
    """Stop, start, kill or restart a component."""

    action: Literal[
        "broker_stop",
        "broker_start",
        "broker_kill",
        "collector_kill",
        "collector_start",
        "collector_restart",
        "agent_kill",
        "agent_start",
    ]
    agent: str | None = None


class ApiAction(_Strict):
    """Call the collector API as the NOC (start planned works, open a client ticket...)."""

    action: Literal["api"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(pattern=r"^/api/")
    body: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[ContactAction | ProcessAction | ApiAction, Field(discriminator="action")]


class Step(_Strict):
    """One timeline entry: ``at`` seconds after the start, do ``do``."""

    at: float = Field(ge=0)
    do: Action


class AlarmExpectation(_Strict):
    """An alarm in a given state within ``within_s`` of its step."""

    expect: Literal["alarm"]
    site: str
    alarm_type: str
    state: Literal["active", "cleared", "unknown"] = "active"
    severity: str | None = None
    within_s: float = Field(default=30.0, gt=0)
    after_s: float = Field(default=0.0, ge=0)


class TicketExpectation(_Strict):
    """A ticket at a site (or none with ``count: 0``) within ``within_s``."""

    expect: Literal["ticket"]
    site: str
    count: int | None = Field(default=None, ge=0)
    criticality: str | None = None
    state: str | None = None
    within_s: float = Field(default=30.0, gt=0)
    after_s: float = Field(default=0.0, ge=0)


Expectation = Annotated[AlarmExpectation | TicketExpectation, Field(discriminator="expect")]


class Scenario(_Strict):
    """A whole scenario."""

    name: str
    description: str = ""
    sites: list[Path] = Field(min_length=1)
    timeline: list[Step] = Field(default_factory=list)
    expectations: list[Expectation] = Field(default_factory=list)
    duration_s: float = Field(default=60.0, gt=0)


def load_scenario(path: Path) -> Scenario:
    """Load and validate one scenario file; site paths are resolved against the repository."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path}: not valid YAML: {err}") from err
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ScenarioError(f"{path}: {where}: {first['msg']}") from err
