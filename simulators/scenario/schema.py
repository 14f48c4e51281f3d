"""Scenario files (YAML): sites, a timeline of actions, and expectations — validated at load.

Times in a scenario are real seconds after the start (``at``, ``after_s``, ``within_s``); the
``advance`` action jumps the test clock that every started process shares, for the processes
that take days (48 h auto-close, escalation thresholds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collector.datadir import DEMO_INVENTORY_DIR

REPO = Path(__file__).resolve().parents[2]


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file, the path and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactAction(_Strict):
    """Put a GPIO contact (door, fire relay, mains relay...) of an agent in its alarm position
    (``active: true``) or back to normal."""

    action: Literal["contact"]
    agent: str
    point: str
    active: bool


class SetValueAction(_Strict):
    """Make a simulated Modbus or SNMP device report ``value`` for a point from now on."""

    action: Literal["set"]
    agent: str
    device: str
    point: str
    value: float | bool


class DeviceFaultAction(_Strict):
    """A device stops answering, answers garbage or slowly, is unplugged, or recovers."""

    action: Literal["device_fault"]
    agent: str
    device: str
    fault: Literal["none", "silent", "garbage", "slow", "down"]


class TrapAction(_Strict):
    """The simulated SNMP device sends a notification to its agent."""

    action: Literal["trap"]
    agent: str
    device: str
    trap_oid: str
    # (oid, net-snmp type letter, value), e.g. [1.3.6.1.2.1.33.1.6.2.1.2, o, 1.3.6.1.2.1.33.1.6.3.2]
    varbinds: list[tuple[str, str, str]] = Field(default_factory=list)
    version: Literal["v2c", "v3"] = "v2c"


class LinkAction(_Strict):
    """Cut (``down``) or restore (``up``) the network between an agent and the broker."""

    action: Literal["link"]
    agent: str
    state: Literal["down", "up"]


class ProcessAction(_Strict):
    """Stop, start, kill or restart a component (an agent ``kill`` is a power cut)."""

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

    @model_validator(mode="after")
    def _agent_named(self) -> ProcessAction:
        if self.action.startswith("agent_") and self.agent is None:
            raise ValueError(f"{self.action} needs the agent it acts on")
        return self


class ApiAction(_Strict):
    """Call the collector API as the NOC, or as a client with ``as_client``.

    Strings in ``path`` and ``body`` may use ``{now}``, ``{now+15d}``, ``{now-2h}`` (the test
    clock's time, ISO 8601) and ``{NAME.FIELD}`` from the answer of an earlier call saved with
    ``save_as: NAME``."""

    action: Literal["api"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(pattern=r"^/api/")
    body: dict[str, Any] | None = None
    save_as: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    expect_status: int | None = None
    # Call as this client (its own token) rather than as the NOC: a client's SAV declaration.
    as_client: str | None = None


class AdvanceAction(_Strict):
    """Jump the shared test clock forward (every agent and the collector jump together)."""

    action: Literal["advance"]
    seconds: float = Field(default=0.0, ge=0)
    minutes: float = Field(default=0.0, ge=0)
    hours: float = Field(default=0.0, ge=0)
    days: float = Field(default=0.0, ge=0)

    @property
    def total_s(self) -> float:
        """The jump in seconds."""
        return self.seconds + 60 * self.minutes + 3600 * self.hours + 86400 * self.days


Action = Annotated[
    ContactAction
    | SetValueAction
    | DeviceFaultAction
    | TrapAction
    | LinkAction
    | ProcessAction
    | ApiAction
    | AdvanceAction,
    Field(discriminator="action"),
]


class Step(_Strict):
    """One timeline entry: ``at`` seconds after the start, do ``do``."""

    at: float = Field(ge=0)
    do: Action


class _Window(_Strict):
    # Checked from ``after_s`` (seconds after the start) for ``within_s`` seconds.
    within_s: float = Field(default=30.0, gt=0)
    after_s: float = Field(default=0.0, ge=0)
    name: str | None = None
    # The opposite: what is described must not be seen at any moment of the window.
    never: bool = False


class AlarmExpectation(_Window):
    """An alarm at a site in a given state (and severity) within the window."""

    expect: Literal["alarm"]
    site: str
    alarm_type: str
    state: Literal["active", "cleared", "unknown"] = "active"
    severity: str | None = None
    equipment: str | None = None


class TicketExpectation(_Window):
    """Tickets matching the filters: at least one, or exactly ``count``. ``count: 0`` means
    none during the whole window (e.g. no ticket during planned works)."""

    expect: Literal["ticket"]
    site: str | None = None
    # curative: from an alarm; sav: declared by a client; incident: declared by the NOC.
    kind: Literal["curative", "sav", "incident", "generic_incident"] | None = None
    count: int | None = Field(default=None, ge=0)
    criticality: str | None = None
    state: str | None = None
    # The alarm behind the ticket is back to normal (re-supervision recorded the return to
    # nominal); restoring the ticket itself takes the NOC's restoration notice.
    nominal: bool | None = None


class DeliveredExpectation(_Window):
    """Nothing lost: every event each agent wrote is acknowledged, and the collector holds
    each stream's events without a gap, all applied."""

    expect: Literal["delivered"]


Expectation = Annotated[
    AlarmExpectation | TicketExpectation | DeliveredExpectation, Field(discriminator="expect")
]


class FleetSpec(_Strict):
    """Virtual agents (the fleet simulator) beside the real ones, with an optional storm: a
    regional power cut raising the same five alarms at ``storm_sites`` sites."""

    agents: int = Field(ge=1, le=20000)
    prefix: str = Field(default="fleet", pattern=r"^[a-z][a-z0-9-]{0,15}$")
    storm_sites: int = Field(default=0, ge=0)
    storm_at_s: float = Field(default=10.0, ge=0)
    storm_window_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _storm_fits(self) -> FleetSpec:
        if self.storm_sites > self.agents:
            raise ValueError(f"storm_sites ({self.storm_sites}) > agents ({self.agents})")
        return self


class Scenario(_Strict):
    """A whole scenario."""

    name: str
    description: str = ""
    # Part of the fast subset ``make test`` runs.
    fast: bool = False
    # Site files of real agents and the collector's inventory, relative to the scenario file.
    sites: list[Path] = Field(default_factory=list)
    inventory: Path = DEMO_INVENTORY_DIR
    fleet: FleetSpec | None = None
    timeline: list[Step] = Field(default_factory=list)
    expectations: list[Expectation] = Field(min_length=1)
    duration_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _something_runs(self) -> Scenario:
        if not self.sites and self.fleet is None:
            raise ValueError("a scenario needs sites (real agents) or a fleet")
        ends = [e.after_s + e.within_s for e in self.expectations]
        if max(ends) > self.duration_s:
            raise ValueError(
                f"an expectation ends at {max(ends):.0f} s,"
                f" after duration_s ({self.duration_s:.0f})"
            )
        return self

    @property
    def uses_test_clock(self) -> bool:
        """Whether the scenario jumps time (its processes then share a test clock)."""
        return any(isinstance(step.do, AdvanceAction) for step in self.timeline)


def load_scenario(path: Path) -> Scenario:
    """Load and validate one scenario file; relative paths are resolved against the repository,
    and every site file and agent name is checked before anything starts."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path}: not valid YAML: {err}") from err
    try:
        scenario = Scenario.model_validate(raw)
        scenario = scenario.model_copy(
            update={
                "sites": [path.parent / site for site in scenario.sites],
                "inventory": path.parent / scenario.inventory,
            }
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ScenarioError(f"{path}: {where}: {first['msg']}") from err
    _check_references(path, scenario)
    return scenario


def _check_references(path: Path, scenario: Scenario) -> None:
    from siteconfig import ConfigError, load_site

    agents: dict[str, set[str]] = {}
    for index, site in enumerate(scenario.sites):
        try:
            config = load_site(site)
        except ConfigError as err:
            raise ScenarioError(f"{path}: sites.{index}: {err}") from err
        agents[config.agent_id] = {d.id for d in config.devices}
    for index, step in enumerate(scenario.timeline):
        agent = getattr(step.do, "agent", None)
        if agent is None:
            continue
        if agent not in agents:
            known = ", ".join(sorted(agents)) or "none"
            raise ScenarioError(
                f"{path}: timeline.{index}.do.agent: no site file has agent {agent!r} ({known})"
            )
        device = getattr(step.do, "device", None)
        if device is not None and device not in agents[agent]:
            raise ScenarioError(
                f"{path}: timeline.{index}.do.device: agent {agent} has no device {device!r}"
                f" ({', '.join(sorted(agents[agent]))})"
            )
