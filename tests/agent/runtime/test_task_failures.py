"""A task of the running agent that dies is reported to the collector (a task_failed state event
and an agent alarm), restarted with backoff, and shown to the technician; a broken sensor does
not stop the rest of the agent or its watchdog."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from agent.runtime import AgentRuntime
from agent.runtime.check import problems
from clocks import ManualClock
from simulators.broker import free_port

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"


@pytest.fixture
def mock_pins() -> Iterator[None]:
    """gpiozero's own mock pins (real pin numbering: 99 is no pin)."""
    before = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield
    finally:
        Device.pin_factory.close()
        Device.pin_factory = before


def _site(tmp_path: Path) -> Path:
    site = {
        "agent_id": "tasks-pm-1",
        "site_id": "PM-TASKS-1",
        "site_kind": "pm",
        "profiles_dir": str(PROFILES),
        "mqtt": {"host": "127.0.0.1", "port": free_port()},  # no broker: it keeps trying
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "devices": [
            {
                "driver": "gpio",
                "id": "contacts",
                "profile": "gpio-shelter-contacts",
                # The door is wired to a pin this board does not have.
                "pins": {"door": 99, "fire": 27, "hvac_fault": 22, "mains_present": 23},
            }
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


def _events(runtime: AgentRuntime) -> list[dict[str, Any]]:
    return [
        json.loads(item.payload)
        for item in runtime.outbox.next_batch(limit=100, exclude=set())
        if item.space == "event"
    ]


async def _until(what: str, probe: Any, within_s: float = 10.0) -> Any:
    for _ in range(int(within_s / 0.05)):
        if value := probe():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_poller_that_dies_is_reported_retried_and_the_agent_runs_on(
    tmp_path: Path, clock: ManualClock, mock_pins: None
) -> None:
    runtime = AgentRuntime(config_path=_site(tmp_path), clock=clock, clock_synced=lambda: True)
    stop = asyncio.Event()
    running = asyncio.create_task(runtime.run(stop))
    try:
        events = await _until(
            "the failure in the outbox",
            lambda: (e := _events(runtime)) and len(e) >= 2 and e,
        )
        state, alarm = events[0], events[1]
        assert (state["name"], state["detail"]["task"]) == ("task_failed", "device-contacts")
        assert "PinInvalidPin" in state["detail"]["error"] and state["detail"]["restart_in_s"] == 1
        assert (alarm["equipment_id"], alarm["point"], alarm["alarm_type"]) == (
            "agent",
            "device-contacts",
            "task_failed",
        )
        assert alarm["transition"] == "raised" and "restarted in 1 s" in alarm["reason"]

        # Retried after the backoff; dying again is logged and counted, not reported again.
        clock.advance(seconds=1)
        status = await _until(
            "the second death",
            lambda: (s := runtime.snapshot()) and s["tasks"] and _deaths(s) == 2 and s,
        )
        assert len(_events(runtime)) == 2
        # The technician sees it; the watchdog is still fed (a sensor is not the agent).
        assert "task device-contacts failing: PinInvalidPin" in " ".join(problems(status))
        assert status["task_problems"] == []
        assert not running.done()
    finally:
        stop.set()
        await running


def _deaths(status: dict[str, Any]) -> int:
    return next(t["deaths"] for t in status["tasks"] if t["task"] == "device-contacts")
