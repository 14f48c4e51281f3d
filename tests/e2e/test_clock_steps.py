"""Stepped edge clocks on real agent processes: what the NOC sees stays on true time.

Two agents run side by side, one whose clock probe says synchronised and one whose probe says
not (the test machine's kernel may report either). Only their wall clock is stepped
(``clocks/stepped.py``; their monotonic clock runs on, as on a box whose clock is set by hand
or by a bad time server): +1 h, then -10 min, then back. The collector runs on the test
machine's clock, the truth. Every raise and clear is stored within 2 s of when the contact
moved, and each agent raises ``clock_skew`` on its site, then clears it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.clocksync import SYNCED_ENV_VAR
from agent.link.clockoffset import SESSION_GUARD_S
from clocks.stepped import ENV_VAR as WALL_STEP_ENV_VAR
from clocks.stepped import set_wall_step
from simulators.stack import AgentProcess, Stack
from tests.conftest import DEMO_SITES, wait_for

pytestmark = pytest.mark.slow

TOLERANCE = timedelta(seconds=2)


def _fast_heartbeat(raw: dict[str, Any]) -> dict[str, Any]:
    raw["mqtt"]["heartbeat_s"] = 1
    return raw


def _alarms(stack: Stack, site_id: str, alarm_type: str) -> list[dict[str, Any]]:
    page = stack.api("GET", f"/api/v1/alarms?site_id={site_id}&alarm_type={alarm_type}").json()
    items: list[dict[str, Any]] = page["items"]
    return items


def _at(iso: str | None) -> datetime:
    assert iso is not None
    return datetime.fromisoformat(iso).astimezone(UTC)


def _cycle(stack: Stack, agents: list[AgentProcess], point: str, alarm_type: str) -> None:
    """Open then close ``point`` at every agent; the stored raise and clear are true."""
    before = {a.agent_id: {x["id"] for x in _alarms(stack, a.site_id, alarm_type)} for a in agents}

    def new(agent: AgentProcess) -> dict[str, Any] | None:
        fresh = [
            a
            for a in _alarms(stack, agent.site_id, alarm_type)
            if a["id"] not in before[agent.agent_id]
        ]
        return fresh[0] if fresh else None

    opened = datetime.now(UTC)
    for agent in agents:
        stack.set_contact(agent.agent_id, point, alarm=True)
    for agent in agents:
        wait_for(f"{alarm_type} raised at {agent.site_id}", lambda agent=agent: new(agent))
    time.sleep(0.5)
    closed = datetime.now(UTC)
    for agent in agents:
        stack.set_contact(agent.agent_id, point, alarm=False)
    for agent in agents:
        alarm = wait_for(
            f"{alarm_type} cleared at {agent.site_id}",
            lambda agent=agent: (a := new(agent)) is not None and a["state"] == "cleared" and a,
        )
        raised_at, cleared_at = _at(alarm["first_seen"]), _at(alarm["cleared_at"])
        assert abs(raised_at - opened) <= TOLERANCE, (agent.agent_id, raised_at, opened)
        assert abs(cleared_at - closed) <= TOLERANCE, (agent.agent_id, cleared_at, closed)


def _agent(stack: Stack, agent: AgentProcess) -> dict[str, Any]:
    """The agent as the NOC sees it (its last measured skew among the rest)."""
    found: dict[str, Any] = stack.api("GET", f"/api/v1/sites/{agent.site_id}/agent").json()
    return found


def _skew_alarm(stack: Stack, site_id: str) -> dict[str, Any] | None:
    items = _alarms(stack, site_id, "clock_skew")
    return items[0] if items else None


def test_raises_and_clears_stay_true_across_wall_clock_steps_and_clock_skew_is_raised(
    stack: Stack, tmp_path: Path
) -> None:
    step_file = tmp_path / "wall-step.json"
    agents = [
        stack.add_agent(
            DEMO_SITES / site,
            rewrite=_fast_heartbeat,
            env={WALL_STEP_ENV_VAR: str(step_file), SYNCED_ENV_VAR: synced},
        )
        for site, synced in (("nro-lyon-01.yaml", "1"), ("pm-lyon-0101.yaml", "0"))
    ]
    for agent in agents:
        stack.wait_for_gpio(agent.agent_id)
        wait_for(
            f"{agent.agent_id} reachable",
            lambda agent=agent: _agent(stack, agent)["reachable"],
        )
    time.sleep(SESSION_GUARD_S)  # the acks of a session's first seconds are not measured

    # On true time: the fire's acks measure each agent's clock against the collector's.
    _cycle(stack, agents, "fire", "fire")
    for agent in agents:
        wait_for(
            f"{agent.agent_id}'s clock measured",
            lambda agent=agent: _agent(stack, agent)["clock_skew_s"] is not None,
        )

    set_wall_step(step_file, 3600.0)
    _cycle(stack, agents, "door", "door_open")
    for agent in agents:
        alarm = wait_for(
            f"clock_skew at {agent.site_id}",
            lambda agent=agent: _skew_alarm(stack, agent.site_id),
        )
        assert alarm["state"] == "active" and alarm["equipment_id"] == "agent"
        assert 3598 <= alarm["value"] <= 3602
        assert abs(_at(alarm["first_seen"]) - datetime.now(UTC)) <= timedelta(seconds=10)
        wait_for(
            f"{agent.agent_id}'s heartbeat reporting the skew",
            lambda agent=agent: abs(_agent(stack, agent)["clock_skew_s"] - 3600) < 2,
        )

    set_wall_step(step_file, -600.0)
    _cycle(stack, agents, "door", "door_open")
    for agent in agents:
        alarm = wait_for(
            f"clock_skew at {agent.site_id} saying -600 s",
            lambda agent=agent: (
                (a := _skew_alarm(stack, agent.site_id)) is not None
                and -602 <= a["value"] <= -598
                and a
            ),
        )
        assert alarm["state"] == "active" and alarm["count"] == 2

    set_wall_step(step_file, 0.0)
    for agent in agents:
        wait_for(
            f"clock_skew cleared at {agent.site_id}",
            lambda agent=agent: (
                (a := _skew_alarm(stack, agent.site_id)) is not None and a["state"] == "cleared"
            ),
        )
