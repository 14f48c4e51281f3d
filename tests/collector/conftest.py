"""Shared collector test fixtures.

The collector's tests run on both databases: SQLite (embedded default) and PostgreSQL
(skipped, visibly, when no server is given). ``desk`` is a NOC desk: the API with a manual
clock, alarm injection and timers.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.app import create_app
from collector.datadir import DEMO_INVENTORY_DIR
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.ingest.store import BatchStore
from collector.inventory.files import load_inventory
from collector.listeners import alarm_engine
from collector.scheduler import Scheduler
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from protocol import AlarmEvent, Severity, Transition
from simulators.stack import enrol_in
from tests.conftest import _pg_schemas


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file brought to the newest schema by the migrations, per test process: each
    test gets a copy (migrating takes 0.4 s, copying a millisecond)."""
    path = tmp_path_factory.mktemp("migrated") / "c.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
    return path


@pytest.fixture(scope="session")
def _migrated_pg() -> Iterator[str]:
    """One PostgreSQL schema brought to the newest schema by the migrations, per test process:
    each test empties it first (truncating takes a tenth of migrating again)."""
    yield from _one_migrated_pg_schema()


def _one_migrated_pg_schema() -> Iterator[str]:
    for make in _pg_schemas():
        url = make()
        engine = make_engine(url)
        create_schema(engine)
        engine.dispose()
        yield url


def _emptied(engine: Engine) -> None:
    """Every table of the schema emptied and its sequences restarted, the migrations' own
    bookkeeping kept."""
    with engine.begin() as conn:
        tables = [
            name
            for (name,) in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    " AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty collector database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "c.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = make_engine(request.getfixturevalue("_migrated_pg"))
        _emptied(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``db_engine``."""
    return make_session_factory(db_engine)


INVENTORY = DEMO_INVENTORY_DIR

NOTICE = {
    "link_ref": "LNK-001",
    "corrective_operation": "door contact re-seated",
    "occurred_at": "2026-01-05T09:00:00Z",
    "description": "door contact, main door of the shelter",
    "causes": "loose magnet",
}


@dataclass
class Desk:
    """The client sends as the NOC unless told otherwise (``alpha``: client op-alpha)."""

    client: TestClient
    sessions: sessionmaker[Session]
    clock: ManualClock
    noc: dict[str, str]
    alpha: dict[str, str]
    seqs: dict[str, int] = field(default_factory=dict)

    def alarm(
        self,
        transition: Transition,
        alarm_type: str = "door_open",
        *,
        site: str = "S1",
        equipment: str = "door-main",
        point: str = "contact",
        severity: Severity = Severity.MAJOR,
    ) -> None:
        """One alarm event from the site's agent, applied as ingest applies it."""
        agent = f"agent-{site.lower()}"
        self.seqs[agent] = self.seqs.get(agent, 0) + 1
        event = AlarmEvent(
            agent_id=agent,
            stream_id="0" * 32,
            seq=self.seqs[agent],
            ts=self.clock.now(),
            clock_synced=True,
            site_id=site,
            equipment_id=equipment,
            point=point,
            alarm_type=alarm_type,
            transition=transition,
            severity=severity,
        )
        with self.sessions() as session:
            alarm_engine().apply_event(session, event=event, agent_id=agent, now=self.clock.now())
            session.commit()

    def timers(self) -> None:
        with self.sessions() as session:
            Scheduler(engine=alarm_engine(), will_grace_s=60, heartbeat_timeout_s=180).run(
                session, now=self.clock.now()
            )
            session.commit()

    def tickets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.get("/api/v1/tickets").json()["items"]
        return items

    def ticket(self, ref: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.get(f"/api/v1/tickets/{ref}").json()
        return found

    def move(self, ref: str, to: str, **body: Any) -> Response:
        return self.client.post(f"/api/v1/tickets/{ref}/transition", json={"to": to, **body})

    def restore(self, ref: str) -> Response:
        return self.client.post(f"/api/v1/tickets/{ref}/restore", json=NOTICE)


@pytest.fixture
def desk(sessions: sessionmaker[Session], clock: ManualClock) -> Desk:
    with sessions() as session:
        load_inventory(session, INVENTORY)
        _, noc = create_user(session, name="noc", role=Role.NOC, now=clock.now())
        _, alpha = create_user(
            session, name="alpha", role=Role.CLIENT, client_id="op-alpha", now=clock.now()
        )
        session.commit()
    client = TestClient(
        create_app(
            session_factory=sessions,
            clock=clock,
            ingest_store=BatchStore(alarm_engine()),
        )
    )
    client.headers["Authorization"] = f"Bearer {noc}"
    return Desk(
        client,
        sessions,
        clock,
        {"Authorization": f"Bearer {noc}"},
        {"Authorization": f"Bearer {alpha}"},
    )


def declaration(**overrides: Any) -> dict[str, Any]:
    body = {
        "hosting_ref": "HEB00001",
        "client_ref": "ALPHA-4411",
        "remote_ref": "RAC-A-0001",
        "description": "customers behind the NRO lost service",
        "impact": "total loss of service",
        "impacted_services": ["FTTH access"],
        "appeared_at": "2026-01-05T08:40:00Z",
        "occurrence": {
            "first_time": True,
            "frequency": "",
            "first_seen_at": "2026-01-05T08:40:00Z",
        },
        "technical_contact": {
            "name": "J. Doe",
            "email": "noc@alpha.example",
            "phone": "+33 1 23 45 67 89",
        },
        "criticality": "major",
        "attachments": [
            {
                "filename": "trace.txt",
                "content_type": "text/plain",
                "content_base64": base64.b64encode(b"ping timeout").decode(),
            }
        ],
    }
    return {**body, **overrides}


def enrol(sessions: sessionmaker[Session], bindings: dict[str, str]) -> None:
    """Enrol agents (agent id -> site id) as the inventory's ``agents`` does; a site not yet
    in the inventory is added."""
    with sessions() as session:
        enrol_in(session, bindings)
        session.commit()
