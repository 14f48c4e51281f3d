"""Every API route, found by enumerating the app: anonymous gets 401, a client never sees or
touches another client's data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.app import create_app
from collector.datadir import DEMO_INVENTORY_DIR
from collector.feed.service import FeedAlarmListener
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.inventory.files import load_inventory
from collector.listeners import alarm_engine
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from collector.tickets.flows import TicketAlarmListener
from protocol import AlarmEvent, Severity, Transition

INVENTORY = DEMO_INVENTORY_DIR
ALPHA_SITES = {"NRO-LYO-01", "PM-LYO-0101"}
BETA_SITE = "PM-LYO-0102"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class World:
    """An app with two clients, each with an alarm ticket at its own site."""

    client: TestClient
    tokens: dict[str, str]
    beta_ticket: str
    beta_inspection: int
    beta_alarm: int


# One world per database for the whole module: building it is most of the cost, and every
# request made here is either refused or read-only (a wrongly accepted change fails its own
# test, whatever else it disturbs).
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('access') / 'c.db'}"
    else:
        url = request.getfixturevalue("module_pg_schema")()
    engine = make_engine(url)
    create_schema(engine)
    try:
        yield from _world(make_session_factory(engine), ManualClock(T0))
    finally:
        engine.dispose()


def _world(sessions: sessionmaker[Session], clock: ManualClock) -> Iterator[World]:
    tokens = {}
    with sessions() as session:
        load_inventory(session, INVENTORY)
        for name, role, client_id in [
            ("noc", Role.NOC, None),
            ("alpha", Role.CLIENT, "op-alpha"),
            ("viewer", Role.VIEWER, None),
        ]:
            _, tokens[name] = create_user(
                session, name=name, role=role, client_id=client_id, now=clock.now()
            )
        engine_ = alarm_engine([TicketAlarmListener(), FeedAlarmListener()])
        for seq, site in enumerate(["NRO-LYO-01", BETA_SITE], start=1):
            engine_.apply_event(
                session,
                event=AlarmEvent(
                    agent_id=f"agent-{seq}",
                    stream_id="0" * 32,
                    seq=1,
                    ts=clock.now(),
                    clock_synced=True,
                    site_id=site,
                    equipment_id="door-main",
                    point="contact",
                    alarm_type="door_open",
                    transition=Transition.RAISED,
                    severity=Severity.MAJOR,
                ),
                agent_id=f"agent-{seq}",
                now=clock.now(),
            )
        session.commit()
    client = TestClient(create_app(session_factory=sessions, clock=clock))
    noc = {"Authorization": f"Bearer {tokens['noc']}"}
    beta_ticket = next(
        t["ref"]
        for t in client.get("/api/v1/tickets", headers=noc).json()["items"]
        if t["site_id"] == BETA_SITE
    )
    inspection = client.post(
        "/api/v1/inspections", headers=noc, json={"site_id": BETA_SITE, "technician": "tech"}
    )
    assert inspection.status_code == 201, inspection.text
    [beta_alarm] = client.get(f"/api/v1/alarms?site_id={BETA_SITE}", headers=noc).json()["items"]
    yield World(client, tokens, beta_ticket, inspection.json()["id"], beta_alarm["id"])


def _api_routes() -> list[tuple[str, str]]:
    """(path, method) of every API operation, from the app's own OpenAPI document."""
    app = create_app(session_factory=None, clock=ManualClock())  # type: ignore[arg-type]
    routes = [
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    ]
    assert len(routes) >= 5  # the enumeration itself must not silently find nothing
    return routes


def _concrete(path: str, world: World) -> str:
    """The path aimed at the other client's (beta's) ticket, site, equipment, service and
    inspection."""
    values = {
        "ref": world.beta_ticket,
        "inspection_id": str(world.beta_inspection),
        "alarm_id": str(world.beta_alarm),
        "site_id": BETA_SITE,
        "equipment_id": "door-main",
        "client_id": "op-beta",
        "hosting_ref": "HEB00003",
        "agent_id": "pm-lyon-0102",
        "stream_id": "0" * 32,
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


ROUTES = _api_routes()
# A valid body per action, so the request reaches the access check rather than validation.
BODIES = {
    "transition": {"to": "cancelled", "detail": "not mine"},
    "escalate": {"detail": "not mine"},
    "updates": {"message": "not mine"},
    "resupervision": {"detail": "not mine"},
    "inspections": {"site_id": BETA_SITE, "technician": "not mine"},
    "complete": {"notes": "not mine"},
    "acknowledge": {"note": "not mine"},
    "unacknowledge": {"reason": "not mine"},
    "decision": {"to": "confirmed"},
    "problems": {"site_id": BETA_SITE, "equipment_id": "x", "alarm_type": "y", "reason": "z"},
    "/api/v1/problems/{ref}/tickets": {"ticket_ref": "TKT-2026-000001"},
    "escalation": {"contacts": [{"level": 2, "name": "me", "email": "me@alpha.example"}]},
    # An urgent request on another client's hosting reference.
    "urgent-requests": {
        "hosting_ref": "HEB00003",
        "request_type": "other",
        "description": "x",
        "technical_contact": {
            "name": "A",
            "email": "a@alpha.example",
            "phone": "+33 1 23 45 67 89",
        },
    },
    "{site_id}": {"name": "taken over"},
    "{equipment_id}": {"kind": "ups"},
    "{client_id}": {"name": "taken over"},
    "sites": {"site_id": "PM-NEW-1", "kind": "pm", "parent_nro": "NRO-LYO-01"},
    "clients": {"client_id": "op-gamma", "name": "Gamma"},
    "services": {"client_id": "op-alpha", "site_id": BETA_SITE, "hosting_ref": "HEB09999"},
    "contract": {"contract_id": "premium-4-levels"},
    "interventions": {"kind": "fiber_maintainer", "detail": "not mine"},
    "restore": {
        "link_ref": "L1",
        "corrective_operation": "x",
        "occurred_at": "2026-01-05T09:00:00Z",
        "description": "x",
        "causes": "x",
    },
    # Declaring on another client's hosting reference.
    "tickets": {
        "hosting_ref": "HEB00003",
        "description": "x",
        "impact": "x",
        "appeared_at": "2026-01-05T09:00:00Z",
        "occurrence": {"first_time": True, "first_seen_at": "2026-01-05T09:00:00Z"},
        "technical_contact": {
            "name": "A",
            "email": "a@alpha.example",
            "phone": "+33 1 23 45 67 89",
        },
    },
    "maintenance": {
        "site_id": BETA_SITE,
        "starts_at": "2026-03-01T09:00:00Z",
        "ends_at": "2026-03-01T10:00:00Z",
        "category": "third_party",
        "hours": "HO",
    },
}


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_anonymous_callers_get_401_everywhere(world: World, path: str, method: str) -> None:
    response = world.client.request(method, _concrete(path, world), json={})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_a_client_never_reads_or_changes_another_clients_data(
    world: World, path: str, method: str
) -> None:
    alpha = {"Authorization": f"Bearer {world.tokens['alpha']}"}
    url = _concrete(path, world)
    if path == "/api/v1/stream":
        url += "?after=0&max_s=1"
    if path.endswith("/telemetry"):
        url += "?equipment_id=contacts&point=door"
    body = BODIES.get(path, BODIES.get(path.rsplit("/", 1)[-1]))
    body = body if method in ("POST", "PUT", "PATCH") else None
    response = world.client.request(method, url, headers=alpha, json=body)
    if "{" in path:
        # Another client's site or ticket does not exist for this caller: the answer is the
        # problem document alone (it may echo the reference asked for, nothing else).
        assert response.status_code in (403, 404)
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.json()) == {"type", "title", "status", "detail", "code", "details"}
    else:
        assert BETA_SITE not in response.text
        assert world.beta_ticket not in response.text
    # And nothing changed for the NOC either.
    noc = {"Authorization": f"Bearer {world.tokens['noc']}"}
    ticket = world.client.get(f"/api/v1/tickets/{world.beta_ticket}", headers=noc).json()
    assert ticket["state"] == "opened"
    [alarm] = world.client.get(f"/api/v1/alarms?site_id={BETA_SITE}", headers=noc).json()["items"]
    assert alarm["acknowledged_by"] is None


def test_a_client_sees_its_own_sites_and_tickets(world: World) -> None:
    alpha = {"Authorization": f"Bearer {world.tokens['alpha']}"}
    sites = {s["site_id"] for s in world.client.get("/api/v1/sites", headers=alpha).json()}
    tickets = world.client.get("/api/v1/tickets", headers=alpha).json()["items"]
    assert sites == ALPHA_SITES
    assert [t["site_id"] for t in tickets] == ["NRO-LYO-01"]


def test_a_viewer_cannot_change_tickets(world: World) -> None:
    viewer = {"Authorization": f"Bearer {world.tokens['viewer']}"}
    response = world.client.post(
        f"/api/v1/tickets/{world.beta_ticket}/transition", headers=viewer, json={"to": "qualified"}
    )
    assert response.status_code == 403
