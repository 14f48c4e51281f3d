"""Birth (retained) and Last Will as the broker delivers them, with a real agent process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.stack import AgentProcess, Stack
from tests.e2e.test_walking_skeleton import wait_for

FAST_SITE = Path(__file__).resolve().parents[2] / "e2e" / "fixtures" / "fast-site.yaml"
pytestmark = pytest.mark.slow


class StatusWatcher:
    """Collects what arrives on an agent's status topic (births and Wills)."""

    def __init__(self, stack: Stack, agent_id: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect(stack.broker.host, stack.broker.port)
        self.client.subscribe(f"sw/v1/agents/{agent_id}/status", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(json.loads(msg.payload))

    def kinds(self) -> list[str]:
        with self._lock:
            return [m["kind"] for m in self.messages]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def running_agent(tmp_path: Path) -> Iterator[tuple[Stack, AgentProcess]]:
    stack = Stack(tmp_path / "stack")
    stack.broker.start()
    agent = stack.add_agent(FAST_SITE)
    stack.wait_for_gpio(agent.agent_id)
    try:
        yield stack, agent
    finally:
        stack.stop()


def test_birth_is_retained_and_kill_9_delivers_the_will_with_the_same_boot(
    running_agent: tuple[Stack, AgentProcess],
) -> None:
    stack, agent = running_agent
    watcher = StatusWatcher(stack, agent.agent_id)
    try:
        wait_for("the retained birth", lambda: "birth" in watcher.kinds())
        birth = watcher.messages[0]
        agent.process.kill()
        wait_for("the Last Will", lambda: "will" in watcher.kinds(), timeout_s=20)
        will = next(m for m in watcher.messages if m["kind"] == "will")
    finally:
        watcher.close()
    assert (will["stream_id"], will["boot"]) == (birth["stream_id"], birth["boot"])


def test_restart_bumps_the_boot_and_a_clean_stop_still_publishes_the_will(
    running_agent: tuple[Stack, AgentProcess],
) -> None:
    stack, agent = running_agent
    watcher = StatusWatcher(stack, agent.agent_id)
    try:
        wait_for("the first birth", lambda: "birth" in watcher.kinds())
        agent.process.stop()  # SIGTERM: DISCONNECT with reason 0x04, so the Will goes out
        wait_for("the Will of a clean stop", lambda: "will" in watcher.kinds(), timeout_s=20)
        agent.process.start()
        wait_for("the second birth", lambda: watcher.kinds().count("birth") == 2)
    finally:
        watcher.close()
    births = [m for m in watcher.messages if m["kind"] == "birth"]
    assert births[1]["boot"] == births[0]["boot"] + 1
    assert births[1]["stream_id"] == births[0]["stream_id"]
