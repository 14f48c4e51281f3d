"""An unreachable broker stops nothing: the collector reports not ready, the agent buffers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators.stack import Stack
from tests.e2e.test_walking_skeleton import DEMO_SITES, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_without_broker(tmp_path: Path) -> Iterator[Stack]:
    chain = Stack(tmp_path / "stack")
    chain.noc_token = chain.create_token(name="noc", role="noc")
    chain.start_collector()
    try:
        yield chain
    finally:
        chain.stop()


def test_components_started_before_the_broker_recover_when_it_comes(
    stack_without_broker: Stack,
) -> None:
    stack = stack_without_broker
    health = httpx.get(f"{stack.base_url}/healthz", timeout=5)
    assert health.status_code == 503
    assert health.json() == {"ready": False, "checks": {"broker": False}}

    agent = stack.add_agent(DEMO_SITES / "pm-lyon-0101.yaml")
    stack.wait_for_gpio(agent.agent_id)
    stack.set_contact(agent.agent_id, "door", alarm=True)
    wait_for(
        "the alarm in the agent's outbox",
        lambda: "door_open" in agent.process.tail(20000) or _outbox_has_event(agent.outbox_path),
    )
    assert agent.process.running and stack.collector.running

    stack.broker.start()
    wait_for(
        "the collector to be ready",
        lambda: httpx.get(f"{stack.base_url}/healthz", timeout=5).status_code == 200,
        timeout_s=45,
    )
    tickets = wait_for(
        "the buffered door alarm's ticket",
        lambda: stack.api("GET", f"/api/v1/tickets?site_id={agent.site_id}").json()["items"],
        timeout_s=90,
    )
    assert [t["title"].split()[0] for t in tickets] == ["door_open"]


def _outbox_has_event(path: Path) -> bool:
    import sqlite3

    if not path.exists():
        return False
    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return False
    finally:
        conn.close()
