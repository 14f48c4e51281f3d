"""Editing the inventory through the API, and equipment discovered from agent heartbeats."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.feed.models import ChangeEvent
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.ingest.store import BatchStore, Received
from collector.listeners import alarm_engine
from protocol import BirthMessage, HeartbeatMessage, OutboxHealth, Transition
from protocol.messages import DeviceHealth, ListenerHealth
from protocol.topics import Channel, agent_topic
from tests.collector.conftest import Desk, declaration

NEW_PM = {
    "site_id": "PM-LYO-0103",
    "kind": "pm",
    "name": "PM Lyon 0103",
    "region": "Auvergne-Rhone-Alpes",
    "parent_nro": "NRO-LYO-01",
    "address": "9 quai D, 69002 Lyon",
    "equipment": [{"equipment_id": "ups-1", "kind": "ups", "model": "snmp-ups-mib"}],
}


def error(response: Any) -> str:
    message: str = response.json()["detail"]
    return message


def test_the_noc_adds_a_site_with_its_equipment_and_edits_it(desk: Desk) -> None:
    created = desk.client.post("/api/v1/sites", json=NEW_PM)
    assert created.status_code == 201, created.text
    assert [e["equipment_id"] for e in created.json()["equipment"]] == ["ups-1"]
    again = desk.client.post("/api/v1/sites", json=NEW_PM)
    assert (again.status_code, error(again)) == (409, "site PM-LYO-0103 already exists")
    orphan = desk.client.post(
        "/api/v1/sites", json={**NEW_PM, "site_id": "PM-X", "parent_nro": "PM-LYO-0101"}
    )
    assert (orphan.status_code, error(orphan)) == (
        422,
        "parent_nro: PM-LYO-0101 is not a known NRO",
    )
    bad = desk.client.post("/api/v1/sites", json={**NEW_PM, "site_id": "PM X", "kind": "hut"})
    assert bad.status_code == 422
    assert bad.json()["details"][0]["where"].startswith("body.site_id")
    twice = desk.client.post(
        "/api/v1/sites",
        json={**NEW_PM, "site_id": "PM-Y", "equipment": [{"equipment_id": "ups-1"}] * 2},
    )
    assert twice.status_code == 422, twice.text  # not a 500 from the database's unique key
    assert "equipment.1: duplicate equipment id 'ups-1'" in twice.text
    assert desk.client.get("/api/v1/sites/PM-Y").status_code == 404  # nothing half-created
    patched = desk.client.patch(
        "/api/v1/sites/PM-LYO-0103", json={"address": "11 quai D, 69002 Lyon"}
    )
    assert patched.json()["address"] == "11 quai D, 69002 Lyon"
    assert patched.json()["name"] == "PM Lyon 0103"  # what was not sent is kept
    demote = desk.client.patch("/api/v1/sites/NRO-LYO-01", json={"kind": "pm"})
    assert demote.status_code == 409
    assert "PM(s) hang off this NRO" in error(demote)
    assert desk.client.get("/api/v1/sites/NRO-LYO-01").json()["kind"] == "nro"


def test_a_site_with_live_data_cannot_be_deleted(desk: Desk) -> None:
    blocked = desk.client.delete("/api/v1/sites/PM-LYO-0101")
    assert blocked.status_code == 409
    assert error(blocked) == "site PM-LYO-0101 still has 1 agent(s), 1 service(s)"
    desk.client.post("/api/v1/sites", json=NEW_PM)
    desk.alarm(Transition.RAISED, site="PM-LYO-0103", equipment="ups-1")
    busy = desk.client.delete("/api/v1/sites/PM-LYO-0103")
    assert busy.status_code == 409
    assert "1 open alarm(s)" in error(busy) and "1 open ticket(s)" in error(busy)
    equipment = desk.client.delete("/api/v1/sites/PM-LYO-0103/equipment/ups-1")
    assert equipment.status_code == 409
    desk.alarm(Transition.CLEARED, site="PM-LYO-0103", equipment="ups-1")
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "cancelled", detail="test site")
    assert desk.client.delete("/api/v1/sites/PM-LYO-0103").status_code == 204
    assert desk.client.get("/api/v1/sites/PM-LYO-0103").status_code == 404


def test_equipment_is_described_and_shows_health_and_open_alarms(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    put = desk.client.put(
        "/api/v1/sites/PM-LYO-0101/equipment/door-main",
        json={"kind": "contacts", "label": "main door", "location": "front"},
    )
    assert put.status_code == 200, put.text
    desk.alarm(Transition.RAISED, site="PM-LYO-0101")
    heartbeat(sessions, clock, site="PM-LYO-0101", devices=["door-main", "env-1"])
    items = {
        e["equipment_id"]: e for e in desk.client.get("/api/v1/sites/PM-LYO-0101/equipment").json()
    }
    assert items["door-main"]["open_alarms"] == 1
    assert items["door-main"]["source"] == "api"
    assert items["door-main"]["health"]["ok"] is True
    assert items["env-1"]["source"] == "agent"  # discovered from the heartbeat
    viewer = desk.client.put(
        "/api/v1/sites/PM-LYO-0101/equipment/door-main",
        json={"kind": "x"},
        headers=desk.alpha,
    )
    assert viewer.status_code == 403


def test_the_agent_view_shows_the_storage_under_its_outbox(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    heartbeat(sessions, clock, site="PM-LYO-0101", devices=[])
    view = desk.client.get("/api/v1/sites/PM-LYO-0101/agent").json()
    assert view["outbox_storage"] is None  # an agent that does not report it
    failing = OutboxHealth(
        events_pending=12,
        telemetry_pending=0,
        last_write=clock.now(),
        free_bytes=0,
        storage_error="data filesystem full: database or disk is full",
        storage_errors=3,
        volatile_pending=12,
        volatile_lost=2,
    )
    heartbeat(sessions, clock, site="PM-LYO-0101", devices=[], outbox=failing)
    storage = desk.client.get("/api/v1/sites/PM-LYO-0101/agent").json()["outbox_storage"]
    assert storage == {
        "last_write": "2026-01-05T09:00:00Z",
        "free_bytes": 0,
        "storage_error": "data filesystem full: database or disk is full",
        "storage_errors": 3,
        "volatile_pending": 12,
        "volatile_lost": 2,
    }


def test_the_agent_view_and_metrics_show_the_trap_and_syslog_listeners(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    def syslog(received: int, accepted: int, rejected: dict[str, int]) -> ListenerHealth:
        return ListenerHealth(
            kind="syslog",
            bind="0.0.0.0",
            port=5514,
            received=received,
            accepted=accepted,
            rejected=rejected,
        )

    traps = ListenerHealth(
        kind="snmp_traps",
        bind="0.0.0.0",
        port=162,
        received=4,
        accepted=1,
        rejected={"security level below authPriv": 3},
    )
    heartbeat(sessions, clock, site="PM-LYO-0101", devices=[])
    assert desk.client.get("/api/v1/sites/PM-LYO-0101/agent").json()["listeners"] == []
    heartbeat(
        sessions,
        clock,
        site="PM-LYO-0101",
        devices=[],
        listeners=[syslog(10, 8, {"no pattern matched": 2}), traps],
    )
    heartbeat(
        sessions, clock, site="PM-LYO-0102", devices=[], listeners=[syslog(5, 4, {"unparsed": 1})]
    )
    view = desk.client.get("/api/v1/sites/PM-LYO-0101/agent").json()["listeners"]
    assert [(v["kind"], v["port"], v["received"], v["rejected"]) for v in view] == [
        ("syslog", 5514, 10, {"no pattern matched": 2}),
        ("snmp_traps", 162, 4, {"security level below authPriv": 3}),
    ]
    metrics = desk.client.get("/metrics").text
    # Fleet totals by kind and reason: no series names an agent.
    for line in [
        'shelterwatch_agent_listener_datagrams{kind="syslog",outcome="received"} 15.0',
        'shelterwatch_agent_listener_datagrams{kind="syslog",outcome="accepted"} 12.0',
        'shelterwatch_agent_listener_datagrams{kind="snmp_traps",outcome="received"} 4.0',
        'shelterwatch_agent_listener_rejected{kind="syslog",reason="no pattern matched"} 2.0',
        'shelterwatch_agent_listener_rejected{kind="syslog",reason="unparsed"} 1.0',
        'shelterwatch_agent_listener_rejected{kind="snmp_traps",reason="security level below '
        'authPriv"} 3.0',
    ]:
        assert line in metrics
    assert "pm-lyon-0101" not in metrics


def test_clients_and_services_are_edited_and_a_new_service_can_be_declared_on(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    created = desk.client.post(
        "/api/v1/clients",
        json={"client_id": "op-gamma", "name": "Gamma", "notify_emails": ["noc@gamma.example"]},
    )
    assert created.status_code == 201, created.text
    bad_contract = desk.client.put(
        "/api/v1/clients/op-gamma", json={"name": "Gamma", "sav_contract": "gold"}
    )
    assert bad_contract.status_code == 422
    assert "unknown contract 'gold'" in error(bad_contract)
    premium = desk.client.put(
        "/api/v1/clients/op-gamma", json={"name": "Gamma SA", "sav_contract": "premium-4-levels"}
    )
    assert premium.json()["sav_contract"] == "premium-4-levels"
    taken = desk.client.post(
        "/api/v1/services",
        json={"client_id": "op-gamma", "site_id": "PM-LYO-0101", "hosting_ref": "HEB00002"},
    )
    assert (taken.status_code, error(taken)) == (
        409,
        "hosting reference HEB00002 is already a service of op-alpha",
    )
    added = desk.client.post(
        "/api/v1/services",
        json={"client_id": "op-gamma", "site_id": "PM-LYO-0101", "hosting_ref": "HEB00077"},
    )
    assert added.status_code == 201, added.text
    with sessions() as session:
        _, token = create_user(
            session, name="gamma", role=Role.CLIENT, client_id="op-gamma", now=clock.now()
        )
        session.commit()
    gamma = {"Authorization": f"Bearer {token}"}
    ticket = desk.client.post(
        "/api/v1/tickets", json=declaration(hosting_ref="HEB00077", criticality="P1"), headers=gamma
    )
    assert ticket.status_code == 201, ticket.text
    assert ticket.json()["contract_id"] == "premium-4-levels"
    assert [c["client_id"] for c in desk.client.get("/api/v1/clients", headers=gamma).json()] == [
        "op-gamma"
    ]
    assert [
        s["hosting_ref"] for s in desk.client.get("/api/v1/services", headers=gamma).json()
    ] == ["HEB00077"]
    assert desk.client.delete("/api/v1/services/HEB00077").status_code == 204
    assert desk.client.get("/api/v1/services?client_id=op-gamma").json() == []
    with sessions() as session:
        audit = [
            json.loads(e.payload)
            for e in session.scalars(select(ChangeEvent).where(ChangeEvent.kind == "inventory"))
        ]
    # Every accepted change, and only those, is on the change feed with who made it.
    assert [(a["action"], a["entity"], a["key"], a["actor"]) for a in audit] == [
        ("created", "client", "op-gamma", "noc"),
        ("updated", "client", "op-gamma", "noc"),
        ("created", "service", "HEB00077", "noc"),
        ("deleted", "service", "HEB00077", "noc"),
    ]


def _ingest(sessions: sessionmaker[Session], clock: ManualClock, message: Any) -> None:
    """One message from an inventory agent, stored and applied as ingest does."""
    received = Received(
        agent_topic(message.agent_id, message_channel(message)),
        message.model_dump_json().encode(),
        clock.now(),
    )
    with sessions() as session:
        BatchStore(alarm_engine()).process(session, [received], now=clock.now())
        session.commit()


def message_channel(message: Any) -> Channel:
    return Channel.STATUS if isinstance(message, BirthMessage) else Channel.HEARTBEAT


def _agent_of(site: str) -> str:
    """The agent the demo inventory enrols at ``site``."""
    return site.lower().replace("-lyo-", "-lyon-")


def heartbeat(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    *,
    site: str,
    devices: list[str],
    outbox: OutboxHealth | None = None,
    listeners: list[ListenerHealth] | None = None,
) -> None:
    """A heartbeat of the site's enrolled agent."""
    _ingest(
        sessions,
        clock,
        HeartbeatMessage(
            agent_id=_agent_of(site),
            stream_id="0" * 32,
            seq=1,
            ts=clock.now(),
            clock_synced=True,
            site_id=site,
            boot=1,
            config_hash="h",
            outbox=outbox or OutboxHealth(events_pending=0, telemetry_pending=0),
            devices=[DeviceHealth(device_id=d, ok=True, last_ok=clock.now()) for d in devices],
            listeners=listeners or [],
        ),
    )


def birth(sessions: sessionmaker[Session], clock: ManualClock, *, site: str) -> None:
    """The site's enrolled agent connects (it is reachable from then on)."""
    _ingest(
        sessions,
        clock,
        BirthMessage(
            agent_id=_agent_of(site),
            stream_id="0" * 32,
            seq=0,
            ts=clock.now(),
            clock_synced=True,
            site_id=site,
            boot=1,
            agent_version="t",
            config_hash="h",
        ),
    )


def test_agents_are_listed_with_their_state(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    heartbeat(sessions, clock, site="PM-LYO-0102", devices=["env-1"])
    birth(sessions, clock, site="PM-LYO-0102")
    agents = desk.client.get("/api/v1/agents").json()
    # The inventory's enrolled agents: the one that was heard from is reachable.
    assert [(a["agent_id"], a["site_id"], a["reachable"]) for a in agents] == [
        ("nro-lyon-01", "NRO-LYO-01", False),
        ("pm-lyon-0101", "PM-LYO-0101", False),
        ("pm-lyon-0102", "PM-LYO-0102", True),
    ]
    assert agents[2]["last_seen"] is not None
    # A client sees the agents of its own sites only.
    alpha = desk.client.get("/api/v1/agents", headers=desk.alpha).json()
    assert [a["agent_id"] for a in alpha] == ["nro-lyon-01", "pm-lyon-0101"]


def test_the_site_list_filters_and_pages(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    # Enrolled agents never heard from: their sites are not watched.
    unreachable = desk.client.get("/api/v1/sites?status=unreachable").json()
    assert [s["site_id"] for s in unreachable] == ["NRO-LYO-01", "PM-LYO-0101", "PM-LYO-0102"]
    birth(sessions, clock, site="PM-LYO-0102")
    desk.alarm(Transition.RAISED, site="PM-LYO-0102")
    all_sites = desk.client.get("/api/v1/sites").json()
    assert [s["site_id"] for s in all_sites] == ["NRO-LYO-01", "PM-LYO-0101", "PM-LYO-0102"]
    pms = desk.client.get("/api/v1/sites?kind=pm&limit=1&offset=1").json()
    assert [s["site_id"] for s in pms] == ["PM-LYO-0102"]
    alarmed = desk.client.get("/api/v1/sites?status=alarm").json()
    assert [(s["site_id"], s["worst_severity"]) for s in alarmed] == [("PM-LYO-0102", "major")]
    assert desk.client.get("/api/v1/sites?region=nowhere").json() == []
    assert desk.client.get("/api/v1/sites?status=burning").status_code == 422
