"""Tickets through the API with a manual clock: lifecycle, SLA clock, timers, recurrence."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.access import Role
from collector.alarms import AlarmEngine
from collector.api.app import create_app
from collector.api.auth import create_user
from collector.scheduler import Scheduler
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from collector.tickets.flows import TicketAlarmListener
from protocol import AlarmEvent, Severity, Transition

NOTICE = {
    "link_ref": "LNK-001",
    "corrective_operation": "door contact re-seated",
    "occurred_at": "2026-01-05T09:00:00Z",
    "description": "door contact, main door of the shelter",
    "causes": "loose magnet",
}


@dataclass
class Desk:
    """A collector with a manual clock: API client, alarm injection, timers."""

    client: TestClient
    sessions: sessionmaker[Session]
    clock: ManualClock
    seq: int = 0

    def alarm(self, transition: Transition, alarm_type: str = "door_open") -> None:
        self.seq += 1
        event = AlarmEvent(
            agent_id="a1",
            stream_id="0" * 32,
            seq=self.seq,
            ts=self.clock.now(),
            clock_synced=True,
            site_id="S1",
            equipment_id="door-main",
            point="contact",
            alarm_type=alarm_type,
            transition=transition,
            severity=Severity.MAJOR,
        )
        with self.sessions() as session:
            AlarmEngine([TicketAlarmListener()]).apply_event(
                session, event=event, agent_id="a1", now=self.clock.now()
            )
            session.commit()

    def timers(self) -> None:
        with self.sessions() as session:
            Scheduler(listeners=[], will_grace_s=60, heartbeat_timeout_s=180).run(
                session, now=self.clock.now()
            )
            session.commit()

    def tickets(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.get("/api/v1/tickets").json()["items"]
        return items

    def move(self, ref: str, to: str, **body: Any) -> Any:
        return self.client.post(f"/api/v1/tickets/{ref}/transition", json={"to": to, **body})

    def restore(self, ref: str) -> Any:
        return self.client.post(f"/api/v1/tickets/{ref}/restore", json=NOTICE)


@pytest.fixture
def desk(tmp_path: Path, clock: ManualClock) -> Iterator[Desk]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_schema(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        _, token = create_user(session, name="noc-1", role=Role.NOC, now=clock.now())
        session.commit()
    client = TestClient(create_app(session_factory=sessions, clock=clock))
    client.headers["Authorization"] = f"Bearer {token}"
    yield Desk(client, sessions, clock)
    engine.dispose()


def test_the_whole_lifecycle_with_a_freeze_and_auto_close_at_exactly_48_hours(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    assert desk.move(ref, "qualified", criticality="critical").status_code == 200
    desk.clock.advance(minutes=30)
    assert desk.move(ref, "in_progress").status_code == 200
    desk.clock.advance(minutes=30)
    assert desk.move(ref, "waiting_client", detail="access badge?").status_code == 200
    desk.clock.advance(hours=10)  # frozen: not counted
    assert desk.move(ref, "in_progress", detail="client answered").status_code == 200
    sla = desk.client.get(f"/api/v1/tickets/{ref}").json()["sla"]
    assert (sla["elapsed_min"], sla["frozen_min"], sla["gtr_min"]) == (60.0, 600.0, 240.0)
    desk.alarm(Transition.CLEARED)
    desk.clock.advance(minutes=5)
    assert desk.restore(ref).status_code == 200
    desk.clock.advance(hours=47, minutes=59)
    desk.timers()
    assert desk.client.get(f"/api/v1/tickets/{ref}").json()["state"] == "restored"
    desk.clock.advance(minutes=1)
    desk.timers()
    detail = desk.client.get(f"/api/v1/tickets/{ref}").json()
    assert detail["state"] == "closed"
    assert [op["action"] for op in detail["operations"]] == [
        "opened",
        "criticality",
        "qualified",
        "in_progress",
        "waiting_client",
        "in_progress",
        "return_to_nominal",
        "restored",
        "auto_closed",
    ]


def test_an_illegal_transition_is_refused_with_the_allowed_ones(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    response = desk.move(ref, "restored")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"ticket {ref}: cannot go from opened to restored; allowed: cancelled, qualified"
    )


def test_stale_if_match_is_refused(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    etag = desk.client.get(f"/api/v1/tickets/{ref}").headers["etag"]
    assert desk.move(ref, "qualified").status_code == 200
    stale = desk.client.post(
        f"/api/v1/tickets/{ref}/transition", json={"to": "cancelled"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412


def test_escalation_thresholds_fire_once_each_and_not_while_frozen(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, alarm_type="fire")  # critical: GTR 4 h on 24/7
    ref = desk.tickets()[0]["ref"]
    levels = []
    for _ in range(6 * 4):
        desk.clock.advance(minutes=15)
        desk.timers()
        desk.timers()  # running twice changes nothing
        levels.append(desk.client.get(f"/api/v1/tickets/{ref}").json()["escalation_level"])
    assert levels[10:12] == [1, 2] and levels[14:16] == [2, 3]  # 75 % at 3 h, 100 % at 4 h
    ops = desk.client.get(f"/api/v1/tickets/{ref}").json()["operations"]
    assert [op["detail"] for op in ops if op["action"] in ("escalated", "sla_threshold")] == [
        "SLA at 50% of the GTR",
        "SLA at 75% of the GTR",
        "SLA at 100% of the GTR",
    ]
    sla = desk.client.get(f"/api/v1/tickets/{ref}").json()["sla"]
    assert sla["breached"] and sla["escalations_fired"] == [0.5, 0.75, 1.0]
    assert sla["penalty_eur"] == 300.0  # 2 started hours late x 150


def test_frozen_ticket_does_not_escalate(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, alarm_type="fire")
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "qualified")
    desk.move(ref, "in_progress")
    desk.clock.advance(minutes=90)
    desk.move(ref, "waiting_client")
    desk.clock.advance(hours=20)
    desk.timers()
    assert desk.client.get(f"/api/v1/tickets/{ref}").json()["escalation_level"] == 1


def test_recurrence_before_closure_reopens_and_after_closure_opens_a_linked_ticket(
    desk: Desk,
) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "qualified")
    desk.move(ref, "in_progress")
    desk.alarm(Transition.CLEARED)
    desk.restore(ref)
    desk.alarm(Transition.RAISED)  # before closure: same ticket, back in progress
    tickets = desk.tickets()
    assert len(tickets) == 1 and tickets[0]["state"] == "in_progress"
    assert tickets[0]["recurrences"] == 1
    desk.alarm(Transition.CLEARED)
    desk.restore(ref)
    desk.move(ref, "closed")
    desk.alarm(Transition.RAISED)  # after closure: a new ticket
    tickets = desk.tickets()
    assert [t["state"] for t in tickets] == ["opened", "closed"]
    opened = desk.client.get(f"/api/v1/tickets/{tickets[0]['ref']}").json()
    assert f"follows closed ticket {ref}" in opened["operations"][0]["detail"]
