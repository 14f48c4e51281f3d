"""The permission table as the API enforces it: every route the app serves x every role, and
every move of the ticket lifecycle x every role, against the hand-written ``permissions.yaml``,
on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.app import create_app
from collector.datadir import DEMO_INVENTORY_DIR
from collector.identity.access import COLUMNS, PERMISSIONS, Principal, Role
from collector.identity.deps import Permit
from collector.identity.tokens import create_user
from collector.ingest.models import StreamState
from collector.inspections.models import Inspection
from collector.inventory.files import EquipmentEntry, ServiceEntry, SiteEntry, load_inventory
from collector.inventory.models import Agent
from collector.problems import service as problems
from collector.sites import editing
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from collector.tickets import declarations, interventions, transitions
from collector.tickets.lifecycle import ALLOWED, TicketState
from collector.tickets.permissions import transition_action
from collector.tickets.schemas import InterventionCreate, RestorationNotice, TicketDeclaration
from tests.collector.conftest import NOTICE, declaration

EXPECTED: dict[str, Any] = yaml.safe_load(Path(__file__).with_name("permissions.yaml").read_text())
ROLES: list[str] = EXPECTED["roles"]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALPHA_SITE, BETA_SITE = "NRO-LYO-01", "PM-LYO-0102"
ALPHA_REF, BETA_REF = "HEB00001", "HEB00003"
TECH, OTHER_TECH = "tech", "other-tech"  # user names of the technician and of a colleague
NOC = Principal(user_id="noc", role=Role.NOC)
GRANT_WORD = {"all": "allowed", "no": "refused", "own": "own"}


def _served() -> dict[str, Any]:
    """Every route of the app as ``METHOD /path``, walked from ``create_app(...).routes``."""
    app = create_app(session_factory=None, clock=ManualClock())  # type: ignore[arg-type]
    served: dict[str, Any] = {}
    for route in iter_route_contexts(app.routes):
        if route.methods is None:  # a mount (the dashboard's files)
            served[f"GET {route.path}/{{path}}"] = route
            continue
        for method in sorted(route.methods - {"HEAD"}):  # HEAD comes with every GET
            served[f"{method} {route.path}"] = route
    assert len(served) >= 50  # the walk itself must not silently find nothing
    return served


SERVED = _served()
PUBLIC = [key for key, rule in EXPECTED["routes"].items() if rule == "public"]
GUARDED = [key for key, rule in EXPECTED["routes"].items() if rule != "public"]


def _permits(key: str) -> list[Any]:
    return [d.call.action for d in SERVED[key].dependant.dependencies if isinstance(d.call, Permit)]


def test_every_route_served_is_expected_and_every_expected_route_is_served() -> None:
    assert sorted(set(SERVED) - set(EXPECTED["routes"])) == [], "routes missing in the yaml"
    assert sorted(set(EXPECTED["routes"]) - set(SERVED)) == [], "the app serves no such route"


@pytest.mark.parametrize("key", GUARDED)
def test_each_guarded_route_names_one_action_whose_row_is_the_expectation(key: str) -> None:
    [action] = _permits(key)
    row = dict(zip(COLUMNS, PERMISSIONS[action], strict=True))
    assert {r.value: GRANT_WORD[g.value] for r, g in row.items()} == EXPECTED["routes"][key]


@pytest.mark.parametrize("key", [k for k in PUBLIC if hasattr(SERVED.get(k), "dependant")])
def test_public_routes_name_no_action(key: str) -> None:
    assert _permits(key) == []


def _move(text: str) -> tuple[TicketState, TicketState]:
    before, after = text.split(" -> ")
    return TicketState(before), TicketState(after)


MOVES = list(EXPECTED["transitions"])


def test_every_lifecycle_move_is_expected_and_its_row_is_the_expectation() -> None:
    legal = {(a, b) for a, targets in ALLOWED.items() for b in targets}
    assert {_move(m) for m in MOVES} == legal
    for move in MOVES:
        row = PERMISSIONS[transition_action(*_move(move))]
        expected = EXPECTED["transitions"][move]
        assert {r.value: GRANT_WORD[g.value] for r, g in zip(COLUMNS, row, strict=True)} == expected


# -- the world: two clients, a technician dispatched on some tickets, one of each role ----------


@dataclass
class World:
    """An app on a small inventory, and makers of fresh objects for calls that change them."""

    client: TestClient
    sessions: sessionmaker[Session]
    clock: ManualClock
    headers: dict[str, dict[str, str]]
    shared: dict[str, Any] = field(default_factory=dict)
    serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.serial):04d}"

    def ticket(
        self,
        state: TicketState = TicketState.OPENED,
        *,
        hosting_ref: str = ALPHA_REF,
        technician: str | None = TECH,
    ) -> str:
        """A ticket on a client's service, taken by the NOC to ``state``; ``technician`` is
        dispatched on it."""
        now = self.clock.now()
        with self.sessions() as session:
            ticket = declarations.declare(
                session,
                declaration=TicketDeclaration.model_validate(
                    declaration(hosting_ref=hosting_ref, attachments=[])
                ),
                principal=NOC,
                now=now,
            )
            ref = ticket.ref or ""
            if technician is not None:
                interventions.add_intervention(
                    session,
                    ref=ref,
                    body=InterventionCreate(
                        kind="onsite_dispatch",
                        slot_start=now,
                        slot_end=now + timedelta(hours=2),
                        technician=technician,
                    ),
                    principal=NOC,
                    now=now,
                )
            walk = {
                TicketState.OPENED: [],
                TicketState.QUALIFIED: [TicketState.QUALIFIED],
                TicketState.IN_PROGRESS: [TicketState.QUALIFIED, TicketState.IN_PROGRESS],
                TicketState.WAITING_CLIENT: [
                    TicketState.QUALIFIED,
                    TicketState.IN_PROGRESS,
                    TicketState.WAITING_CLIENT,
                ],
                TicketState.RESTORED: [TicketState.QUALIFIED, TicketState.IN_PROGRESS],
            }[state]
            for step in walk:
                transitions.transition(session, ref=ref, to=step, principal=NOC, now=now)
            if state is TicketState.RESTORED:
                notice = RestorationNotice.model_validate(NOTICE)
                transitions.restore(session, ref=ref, notice=notice, principal=NOC, now=now)
            session.commit()
        return ref

    def site(self) -> str:
        """A PM with one equipment and nothing live."""
        site_id = self.unique("PM-PERM-")
        entry = SiteEntry(
            site_id=site_id,
            kind="pm",
            parent_nro=ALPHA_SITE,
            equipment=[EquipmentEntry(equipment_id="ups-1")],
        )
        with self.sessions() as session:
            editing.create_site(session, entry=entry, principal=NOC, now=self.clock.now())
            session.commit()
        return site_id

    def client_id(self) -> str:
        client_id = self.unique("op-perm-")
        with self.sessions() as session:
            entry = editing.ClientEntry(client_id=client_id, name="Perm")
            editing.save_client(
                session, entry=entry, principal=NOC, now=self.clock.now(), create=True
            )
            session.commit()
        return client_id

    def service(self) -> str:
        hosting_ref = self.unique("HEB7")
        entry = ServiceEntry(client_id="op-alpha", site_id=ALPHA_SITE, hosting_ref=hosting_ref)
        with self.sessions() as session:
            editing.create_service(session, entry=entry, principal=NOC, now=self.clock.now())
            session.commit()
        return hosting_ref

    def problem(self, site_id: str = ALPHA_SITE) -> str:
        with self.sessions() as session:
            problem = problems.create(
                session,
                site_id=site_id,
                equipment_id="door-main",
                alarm_type="door_open",
                reason="keeps opening",
                ticket_refs=[],
                principal=NOC,
                now=self.clock.now(),
            )
            session.commit()
            return problem.ref

    def quarantined(self) -> str:
        """A stream of the NRO's agent, quarantined at its first event (nothing stored)."""
        stream_id = f"{next(self.serial):032x}"
        with self.sessions() as session:
            session.add(
                StreamState(
                    agent_id="agent-nro",
                    stream_id=stream_id,
                    applied_through=0,
                    first_seen=self.clock.now(),
                    quarantined_at=self.clock.now(),
                    quarantine_seq=1,
                    quarantine_reason="a bug",
                )
            )
            session.commit()
        return f"/api/v1/agents/agent-nro/streams/{stream_id}"

    def alarm(self, *, site_id: str = ALPHA_SITE, acknowledged: bool = False) -> int:
        """An open door alarm at a site, acknowledged by the NOC or not."""
        now = self.clock.now()
        with self.sessions() as session:
            alarm = Alarm(
                site_id=site_id,
                agent_id="agent-nro",
                equipment_id="door-main",
                point=self.unique("contact-"),
                alarm_type="door_open",
                state="active",
                severity="major",
                first_seen=now,
                last_seen=now,
                raised_at=now,
                acknowledged_by="noc" if acknowledged else None,
                acknowledged_at=now if acknowledged else None,
            )
            session.add(alarm)
            session.commit()
            return alarm.id

    def inspection(self, *, technician: str = TECH, site_id: str = ALPHA_SITE) -> int:
        now = self.clock.now()
        with self.sessions() as session:
            inspection = Inspection(
                site_id=site_id,
                technician=technician,
                started_at=now,
                ends_at=now + timedelta(hours=1),
                status="active",
                results="{}",
            )
            session.add(inspection)
            session.commit()
            return inspection.id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('permissions') / 'c.db'}"
    else:
        url = request.getfixturevalue("module_pg_schema")()
    engine = make_engine(url)
    create_schema(engine)
    sessions = make_session_factory(engine)
    clock = ManualClock(T0)
    headers = {}
    with sessions() as session:
        load_inventory(session, DEMO_INVENTORY_DIR)
        for role in ROLES:
            name = TECH if role == "technician" else role
            client_id = "op-alpha" if role == "client" else None
            _, token = create_user(
                session, name=name, role=Role(role), client_id=client_id, now=clock.now()
            )
            headers[role] = {"Authorization": f"Bearer {token}"}
        session.add(Agent(agent_id="agent-nro", site_id=ALPHA_SITE, reachable=True))
        session.commit()
    w = World(
        TestClient(create_app(session_factory=sessions, clock=clock)), sessions, clock, headers
    )
    # Objects that calls expected to be refused are aimed at (they must stay untouched).
    w.shared = {
        "ticket": w.ticket(),
        "beta_ticket": w.ticket(hosting_ref=BETA_REF, technician=None),
        "other_ticket": w.ticket(technician=OTHER_TECH),
        "problem": w.problem(),
        "beta_problem": w.problem(BETA_SITE),
        "alarm": w.alarm(),
        "beta_alarm": w.alarm(site_id=BETA_SITE),
        "inspection": w.inspection(),
        "beta_inspection": w.inspection(site_id=BETA_SITE, technician=OTHER_TECH),
        "other_inspection": w.inspection(technician=OTHER_TECH),
    }
    try:
        yield w
    finally:
        engine.dispose()


# -- one call per route: what to send, for a role, on its own objects or someone else's ---------


@dataclass(frozen=True)
class Ask:
    role: str
    fresh: bool  # expected to go through: objects of its own, since the call changes them
    foreign: bool = False  # aimed at another client's (or another technician's) object


Call = tuple[str, dict[str, Any] | None]


def _ticket(w: World, ask: Ask, state: TicketState = TicketState.OPENED) -> str:
    if ask.foreign:
        return str(w.shared["beta_ticket" if ask.role == "client" else "other_ticket"])
    return w.ticket(state) if ask.fresh else str(w.shared["ticket"])


def _site(ask: Ask) -> str:
    return BETA_SITE if ask.foreign else ALPHA_SITE


def _inspection(w: World, ask: Ask) -> int:
    if ask.foreign:
        return int(w.shared["beta_inspection" if ask.role == "client" else "other_inspection"])
    return w.inspection() if ask.fresh else int(w.shared["inspection"])


def _transition(w: World, ask: Ask) -> Call:
    # A client's move is answering a question; the NOC's, qualifying.
    if ask.role == "client":
        ref = _ticket(w, ask, TicketState.WAITING_CLIENT)
        return f"/api/v1/tickets/{ref}/transition", {"to": "in_progress"}
    return f"/api/v1/tickets/{_ticket(w, ask)}/transition", {"to": "qualified"}


def _start_inspection(w: World, ask: Ask) -> Call:
    site_id = w.site() if ask.fresh else ALPHA_SITE
    technician = OTHER_TECH if ask.foreign else "" if ask.role == "technician" else TECH
    return "/api/v1/inspections", {"site_id": site_id, "technician": technician}


URGENT = {
    "hosting_ref": ALPHA_REF,
    "request_type": "other",
    "description": "x",
    "technical_contact": {"name": "A", "email": "a@alpha.example", "phone": "+33 1 23 45 67 89"},
}
MAINTENANCE = {
    "site_id": ALPHA_SITE,
    "starts_at": "2026-03-01T09:00:00Z",
    "ends_at": "2026-03-01T10:00:00Z",
    "category": "third_party",
    "hours": "HO",
}
CONTACTS = {"contacts": [{"level": 2, "name": "Desk", "email": "desk@alpha.example"}]}

PLANS: dict[str, Callable[[World, Ask], Call]] = {
    "GET /api/v1/me": lambda w, a: ("/api/v1/me", None),
    "GET /api/v1/sites": lambda w, a: ("/api/v1/sites", None),
    "GET /api/v1/sites/{site_id}": lambda w, a: (f"/api/v1/sites/{_site(a)}", None),
    "GET /api/v1/sites/{site_id}/telemetry": lambda w, a: (
        f"/api/v1/sites/{_site(a)}/telemetry?equipment_id=door-main&point=contact",
        None,
    ),
    "GET /api/v1/sites/{site_id}/agent": lambda w, a: (f"/api/v1/sites/{_site(a)}/agent", None),
    "GET /api/v1/sites/{site_id}/equipment": lambda w, a: (
        f"/api/v1/sites/{_site(a)}/equipment",
        None,
    ),
    "POST /api/v1/sites": lambda w, a: (
        "/api/v1/sites",
        {"site_id": w.unique("PM-NEW-"), "kind": "pm", "parent_nro": ALPHA_SITE},
    ),
    "PATCH /api/v1/sites/{site_id}": lambda w, a: (
        f"/api/v1/sites/{w.site() if a.fresh else ALPHA_SITE}",
        {"name": "renamed"},
    ),
    "DELETE /api/v1/sites/{site_id}": lambda w, a: (
        f"/api/v1/sites/{w.site() if a.fresh else ALPHA_SITE}",
        None,
    ),
    "PUT /api/v1/sites/{site_id}/equipment/{equipment_id}": lambda w, a: (
        f"/api/v1/sites/{ALPHA_SITE}/equipment/{w.unique('ups-')}",
        {"kind": "ups"},
    ),
    "DELETE /api/v1/sites/{site_id}/equipment/{equipment_id}": lambda w, a: (
        f"/api/v1/sites/{w.site() if a.fresh else ALPHA_SITE}/equipment/ups-1",
        None,
    ),
    "GET /api/v1/services": lambda w, a: ("/api/v1/services", None),
    "POST /api/v1/services": lambda w, a: (
        "/api/v1/services",
        {"client_id": "op-alpha", "site_id": ALPHA_SITE, "hosting_ref": w.unique("HEB8")},
    ),
    "DELETE /api/v1/services/{hosting_ref}": lambda w, a: (
        f"/api/v1/services/{w.service() if a.fresh else ALPHA_REF}",
        None,
    ),
    "GET /api/v1/agents": lambda w, a: ("/api/v1/agents", None),
    "PUT /api/v1/agents/{agent_id}": lambda w, a: (
        f"/api/v1/agents/{w.unique('new-agent-')}",
        {"site_id": ALPHA_SITE},
    ),
    "GET /api/v1/agents/unenrolled": lambda w, a: ("/api/v1/agents/unenrolled", None),
    "GET /api/v1/dead-letters": lambda w, a: ("/api/v1/dead-letters", None),
    "GET /api/v1/streams/quarantined": lambda w, a: ("/api/v1/streams/quarantined", None),
    "POST /api/v1/agents/{agent_id}/streams/{stream_id}/release": lambda w, a: (
        f"{w.quarantined()}/release",
        {"reason": "fixed in 1.4.2"},
    ),
    "POST /api/v1/agents/{agent_id}/streams/{stream_id}/skip": lambda w, a: (
        f"{w.quarantined()}/skip",
        {"reason": "bug 42"},
    ),
    "GET /api/v1/clients": lambda w, a: ("/api/v1/clients", None),
    "POST /api/v1/clients": lambda w, a: (
        "/api/v1/clients",
        {"client_id": w.unique("op-new-"), "name": "New"},
    ),
    "PUT /api/v1/clients/{client_id}": lambda w, a: (
        f"/api/v1/clients/{w.client_id() if a.fresh else 'op-alpha'}",
        {"name": "renamed"},
    ),
    "GET /api/v1/clients/{client_id}/escalation": lambda w, a: (
        f"/api/v1/clients/{'op-beta' if a.foreign else 'op-alpha'}/escalation",
        None,
    ),
    "PUT /api/v1/clients/{client_id}/escalation": lambda w, a: (
        f"/api/v1/clients/{w.client_id() if a.fresh else 'op-alpha'}/escalation",
        CONTACTS,
    ),
    "GET /api/v1/alarms": lambda w, a: ("/api/v1/alarms", None),
    "GET /api/v1/alarms/{alarm_id}/history": lambda w, a: (
        f"/api/v1/alarms/{w.shared['beta_alarm' if a.foreign else 'alarm']}/history",
        None,
    ),
    "POST /api/v1/alarms/{alarm_id}/acknowledge": lambda w, a: (
        f"/api/v1/alarms/{w.alarm() if a.fresh else w.shared['alarm']}/acknowledge",
        {"note": "vu"},
    ),
    "POST /api/v1/alarms/{alarm_id}/unacknowledge": lambda w, a: (
        f"/api/v1/alarms/{w.alarm(acknowledged=True) if a.fresh else w.shared['alarm']}"
        "/unacknowledge",
        {"reason": "pas la bonne"},
    ),
    "GET /api/v1/tickets": lambda w, a: ("/api/v1/tickets", None),
    "GET /api/v1/tickets/{ref}": lambda w, a: (f"/api/v1/tickets/{_ticket(w, a)}", None),
    "POST /api/v1/tickets": lambda w, a: ("/api/v1/tickets", declaration(attachments=[])),
    "POST /api/v1/tickets/{ref}/transition": _transition,
    "POST /api/v1/tickets/{ref}/restore": lambda w, a: (
        f"/api/v1/tickets/{_ticket(w, a, TicketState.IN_PROGRESS)}/restore",
        NOTICE,
    ),
    "POST /api/v1/tickets/{ref}/escalate": lambda w, a: (
        f"/api/v1/tickets/{_ticket(w, a)}/escalate",
        {"detail": "x"},
    ),
    "POST /api/v1/tickets/{ref}/resupervision": lambda w, a: (
        f"/api/v1/tickets/{_ticket(w, a)}/resupervision",
        {"detail": "x"},
    ),
    "POST /api/v1/tickets/{ref}/contract": lambda w, a: (
        f"/api/v1/tickets/{_ticket(w, a)}/contract",
        {"contract_id": "premium-4-levels"},
    ),
    "POST /api/v1/tickets/{ref}/interventions": lambda w, a: (
        f"/api/v1/tickets/{_ticket(w, a)}/interventions",
        {"kind": "fiber_maintainer", "detail": "splice redone"},
    ),
    "POST /api/v1/tickets/{ref}/updates": lambda w, a: (
        f"/api/v1/tickets/{_ticket(w, a)}/updates",
        {"message": "on site"},
    ),
    "POST /api/v1/urgent-requests": lambda w, a: ("/api/v1/urgent-requests", URGENT),
    "GET /api/v1/urgent-requests": lambda w, a: ("/api/v1/urgent-requests", None),
    "GET /api/v1/problems": lambda w, a: ("/api/v1/problems", None),
    "GET /api/v1/problems/{ref}": lambda w, a: (
        f"/api/v1/problems/{w.shared['beta_problem' if a.foreign else 'problem']}",
        None,
    ),
    "POST /api/v1/problems": lambda w, a: (
        "/api/v1/problems",
        {"site_id": ALPHA_SITE, "equipment_id": "door-main", "alarm_type": "x", "reason": "y"},
    ),
    "POST /api/v1/problems/{ref}/decision": lambda w, a: (
        f"/api/v1/problems/{w.problem() if a.fresh else w.shared['problem']}/decision",
        {"to": "closed", "root_cause": "magnet", "permanent_fix": "new contact"},
    ),
    "POST /api/v1/problems/{ref}/tickets": lambda w, a: (
        f"/api/v1/problems/{w.problem() if a.fresh else w.shared['problem']}/tickets",
        {"ticket_ref": w.shared["ticket"]},
    ),
    "GET /api/v1/maintenance": lambda w, a: ("/api/v1/maintenance", None),
    "POST /api/v1/maintenance": lambda w, a: ("/api/v1/maintenance", MAINTENANCE),
    "GET /api/v1/inspections": lambda w, a: ("/api/v1/inspections", None),
    "GET /api/v1/inspections/due": lambda w, a: ("/api/v1/inspections/due", None),
    "GET /api/v1/inspections/{inspection_id}": lambda w, a: (
        f"/api/v1/inspections/{_inspection(w, a)}",
        None,
    ),
    "POST /api/v1/inspections": _start_inspection,
    "POST /api/v1/inspections/{inspection_id}/complete": lambda w, a: (
        f"/api/v1/inspections/{_inspection(w, a)}/complete",
        {"notes": "all good"},
    ),
    "GET /api/v1/reports/monthly": lambda w, a: (
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha",
        None,
    ),
    "GET /api/v1/reports/tickets-summary": lambda w, a: ("/api/v1/reports/tickets-summary", None),
    "GET /api/v1/reports/malfunctions": lambda w, a: ("/api/v1/reports/malfunctions", None),
    "GET /api/v1/reports/equipment/{site_id}/{equipment_id}": lambda w, a: (
        f"/api/v1/reports/equipment/{_site(a)}/door-main",
        None,
    ),
    "GET /api/v1/stream": lambda w, a: ("/api/v1/stream?max_s=0.000001", None),  # at once
    "GET /metrics": lambda w, a: ("/metrics", None),
}


def test_every_guarded_route_has_a_call() -> None:
    assert sorted(PLANS) == sorted(GUARDED)


def _call(w: World, key: str, ask: Ask) -> Response:
    url, body = PLANS[key](w, ask)
    return w.client.request(key.split()[0], url, headers=w.headers[ask.role], json=body)


ROUTE_ROLES = [(key, role) for key in GUARDED for role in ROLES]


@pytest.mark.parametrize(("key", "role"), ROUTE_ROLES, ids=[f"{r}: {k}" for k, r in ROUTE_ROLES])
def test_each_role_is_allowed_or_refused_as_written(world: World, key: str, role: str) -> None:
    expected = EXPECTED["routes"][key][role]
    response = _call(world, key, Ask(role, fresh=expected != "refused"))
    if expected == "refused":
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    else:
        assert 200 <= response.status_code < 300, response.text


# Own objects named in the path (or, for starting an inspection, in the body).
FOREIGN = [
    (key, role)
    for key, role in ROUTE_ROLES
    if EXPECTED["routes"][key][role] == "own" and ("{" in key or key == "POST /api/v1/inspections")
]


@pytest.mark.parametrize(("key", "role"), FOREIGN, ids=[f"{r}: {k}" for k, r in FOREIGN])
def test_own_means_refused_on_someone_elses_object(world: World, key: str, role: str) -> None:
    response = _call(world, key, Ask(role, fresh=False, foreign=True))
    # A client is not told that another client's object exists; a technician may read it.
    assert response.status_code == (404 if role == "client" else 403), response.text


@pytest.mark.parametrize("key", PUBLIC)
def test_public_routes_answer_without_a_token(world: World, key: str) -> None:
    path = key.split()[1]
    path = path.replace("{path}", "swagger-ui.css" if "docs-assets" in path else "app.js")
    assert world.client.get(path).status_code == 200


MOVE_ROLES = [(move, role) for move in MOVES for role in ROLES]


@pytest.mark.parametrize(("move", "role"), MOVE_ROLES, ids=[f"{r}: {m}" for m, r in MOVE_ROLES])
def test_each_role_makes_only_its_lifecycle_moves(world: World, move: str, role: str) -> None:
    before, after = _move(move)
    expected = EXPECTED["transitions"][move][role]
    ref = world.ticket(before)
    response = _lifecycle_call(world, ref, after, role)
    state = world.client.get(f"/api/v1/tickets/{ref}", headers=world.headers["noc"]).json()
    if expected == "refused":
        assert (response.status_code, state["state"]) == (403, before.value), response.text
    else:
        assert (response.status_code, state["state"]) == (200, after.value), response.text


CLIENT_MOVES = [m for m in MOVES if EXPECTED["transitions"][m]["client"] == "own"]


@pytest.mark.parametrize("move", CLIENT_MOVES)
def test_a_client_makes_its_moves_on_its_own_tickets_only(world: World, move: str) -> None:
    before, after = _move(move)
    ref = world.ticket(before, hosting_ref=BETA_REF, technician=None)
    assert _lifecycle_call(world, ref, after, "client").status_code == 404


def _lifecycle_call(w: World, ref: str, to: TicketState, role: str) -> Response:
    if to is TicketState.RESTORED:  # with the restoration notice, on its own route
        return w.client.post(f"/api/v1/tickets/{ref}/restore", headers=w.headers[role], json=NOTICE)
    return w.client.post(
        f"/api/v1/tickets/{ref}/transition", headers=w.headers[role], json={"to": to.value}
    )
