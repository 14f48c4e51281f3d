"""The whole chain with real processes: door -> agent outbox -> mosquitto -> collector -> ticket."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from simulators.stack import Stack
from tests.conftest import DEMO_SITES, wait_for

pytestmark = pytest.mark.slow


def _tickets(stack: Stack, site_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.api("GET", f"/api/v1/tickets?site_id={site_id}").json()[
        "items"
    ]
    return items


def _open_alarms(stack: Stack, site_id: str) -> dict[str, dict[str, Any]]:
    page = stack.api("GET", f"/api/v1/alarms?state=open&site_id={site_id}").json()
    return {a["alarm_type"]: a for a in page["items"]}


def test_door_opening_opens_a_ticket_and_alarms_during_a_broker_outage_arrive_once(
    stack: Stack,
) -> None:
    agent = stack.add_agent(DEMO_SITES / "nro-lyon-01.yaml")
    stack.wait_for_gpio(agent.agent_id)
    wait_for(
        "the agent's birth",
        lambda: any(s["agent_reachable"] for s in stack.api("GET", "/api/v1/sites").json()),
    )

    stack.set_contact(agent.agent_id, "door", alarm=True)
    tickets = wait_for("a ticket for the door", lambda: _tickets(stack, agent.site_id))
    assert tickets[0]["title"].startswith("door_open")
    assert tickets[0]["criticality"] == "major"
    assert tickets[0]["state"] == "opened"

    stack.broker.stop()
    stack.set_contact(agent.agent_id, "fire", alarm=True)
    stack.set_contact(agent.agent_id, "mains_present", alarm=True)
    time.sleep(3.5)  # past the mains raise delay: both alarms are in the outbox, not sent
    stack.broker.start()

    alarms = wait_for(
        "fire and mains_lost at the collector",
        lambda: (
            (a := _open_alarms(stack, agent.site_id)) and {"fire", "mains_lost"} <= set(a) and a
        ),
        timeout_s=60,
    )
    assert alarms["fire"]["severity"] == "critical"
    assert alarms["fire"]["count"] == 1
    assert alarms["mains_lost"]["count"] == 1
    wait_for("a ticket per alarm", lambda: len(_tickets(stack, agent.site_id)) == 3)
    time.sleep(2)  # any duplicate delivery would land by now

    engine = sa.create_engine(stack.db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT seq, COUNT(*) FROM inbound_events GROUP BY seq ORDER BY seq")
        ).all()
        alarm_rows = conn.execute(
            sa.text("SELECT alarm_type, COUNT(*) FROM alarms GROUP BY alarm_type")
        ).all()
    engine.dispose()
    assert [(seq, n) for seq, n in rows] == [(1, 1), (2, 1), (3, 1)]
    assert dict(alarm_rows) == {"door_open": 1, "fire": 1, "mains_lost": 1}
    assert len(_tickets(stack, agent.site_id)) == 3
    assert httpx.get(f"{stack.base_url}/metrics", timeout=5).status_code == 401
    scraper = stack.create_token(name="prometheus", role="monitoring")
    metrics = httpx.get(
        f"{stack.base_url}/metrics", headers={"Authorization": f"Bearer {scraper}"}, timeout=5
    ).text
    assert 'shelterwatch_open_tickets{criticality="critical"} 1.0' in metrics
    assert 'shelterwatch_open_tickets{criticality="major"} 2.0' in metrics
    assert "shelterwatch_ingest_stored_total" in metrics
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    # The live agent is connected, and each message it sent was timed from receipt to commit.
    assert samples[("shelterwatch_agents", (("state", "connected"),))] >= 1
    assert samples[("shelterwatch_ingest_lag_seconds_count", ())] >= 4
