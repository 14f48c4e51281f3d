"""An event that cannot be applied quarantines its own stream only: every other stream goes on,
the stream's events are still stored and acked, and the NOC releases it or skips the event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.listener import AlarmChange
from collector.alarms.models import Alarm
from collector.app import create_app
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.ingest.models import DeadLetter, InboundEvent, StreamIntervention, StreamState
from collector.ingest.store import BatchStore, Received
from collector.ingest.writer import BatchWriter
from collector.listeners import alarm_engine, alarm_listeners
from tests.collector.conftest import enrol
from tests.collector.ingest.test_store import STREAM, _alarm, _msg


class Poison:
    """A listener that fails on one equipment while ``broken`` (a bug, until it is fixed)."""

    broken = True

    def alarm_changed(
        self, session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime
    ) -> None:
        if self.broken and alarm.equipment_id == "cursed":
            raise TypeError("cannot handle this equipment")


@pytest.fixture
def poison() -> Poison:
    return Poison()


@pytest.fixture
def store(poison: Poison) -> BatchStore:
    return BatchStore(alarm_engine([poison, *alarm_listeners()]))


@pytest.fixture(autouse=True)
def _enrolled(sessions: sessionmaker[Session]) -> None:
    enrol(sessions, {"a1": "S1", "b1": "S2"})


def _writer(sessions: sessionmaker[Session], clock: ManualClock, store: BatchStore) -> BatchWriter:
    return BatchWriter(sessions=sessions, store=store, now=clock.now, sleep=lambda _s: None)


def _b(clock: ManualClock, seq: int) -> Received:
    return _msg(clock, {**_alarm(seq, point=seq), "agent_id": "b1", "site_id": "S2"}, agent="b1")


def _applied(sessions: sessionmaker[Session], agent_id: str) -> int:
    with sessions() as session:
        state = session.get(StreamState, (agent_id, STREAM))
        return state.applied_through if state is not None else 0


def _open(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(Alarm.site_id, Alarm.equipment_id, Alarm.alarm_type)
            .where(Alarm.state != "cleared")
            .order_by(Alarm.site_id, Alarm.equipment_id, Alarm.point)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _cursed(seq: int) -> dict[str, Any]:
    return {**_alarm(seq), "equipment_id": "cursed"}


def test_a_failing_event_quarantines_its_stream_and_nothing_else(
    sessions: sessionmaker[Session], clock: ManualClock, store: BatchStore
) -> None:
    batch = [
        _msg(clock, _alarm(1, point=1)),
        _msg(clock, _cursed(2)),
        _msg(clock, _alarm(3, point=3)),
        *[_b(clock, seq) for seq in range(1, 41)],
    ]
    outcome = _writer(sessions, clock, store).write(batch)
    # Everything stored and acked: a1 up to 3 (its stream stops applying at 2), b1 to 40.
    assert outcome.result.acks[("a1", STREAM)][0] == 3
    assert outcome.result.acks[("b1", STREAM)][0] == 40
    assert (outcome.abandoned, dict(outcome.result.dead_letters)) == (0, {})
    assert (_applied(sessions, "a1"), _applied(sessions, "b1")) == (1, 40)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 43
        state = session.get(StreamState, ("a1", STREAM))
        assert state is not None and state.quarantine_seq == 2
        assert "cannot handle this equipment" in (state.quarantine_reason or "")
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 0
    assert ("S1", "agent", "stream_quarantined") in _open(sessions)
    # Later events of the stream are stored and acked, not applied.
    later = _writer(sessions, clock, store).write([_msg(clock, _alarm(4, point=4))])
    assert later.result.acks[("a1", STREAM)][0] == 4
    assert _applied(sessions, "a1") == 1


def _noc_client(
    sessions: sessionmaker[Session], clock: ManualClock, store: BatchStore
) -> TestClient:
    with sessions() as session:
        _, token = create_user(session, name="noc-q", role=Role.NOC, now=clock.now())
        session.commit()
    client = TestClient(create_app(session_factory=sessions, clock=clock, ingest_store=store))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_the_noc_releases_after_a_fix_or_skips_the_event(
    sessions: sessionmaker[Session], clock: ManualClock, store: BatchStore, poison: Poison
) -> None:
    _writer(sessions, clock, store).write(
        [_msg(clock, _alarm(1, point=1)), _msg(clock, _cursed(2)), _msg(clock, _alarm(3, point=3))]
    )
    client = _noc_client(sessions, clock, store)
    listed = client.get("/api/v1/streams/quarantined").json()
    assert [(q["agent_id"], q["site_id"], q["seq"]) for q in listed] == [("a1", "S1", 2)]
    path = f"/api/v1/agents/a1/streams/{STREAM}"
    # Released while still broken: refused, nothing changed.
    again = client.post(f"{path}/release", json={"reason": "retry after restart"})
    assert again.status_code == 409
    assert "still cannot be applied" in again.json()["detail"]
    assert len(client.get("/api/v1/streams/quarantined").json()) == 1
    # Skipped: event 2 counts applied without effect, 3 is applied, the alarm clears.
    skipped = client.post(f"{path}/skip", json={"reason": "bug 42, event dropped"})
    assert skipped.status_code == 200, skipped.text
    assert (skipped.json()["seq"], skipped.json()["applied_through"]) == (2, 3)
    assert client.get("/api/v1/streams/quarantined").json() == []
    assert ("S1", "agent", "stream_quarantined") not in _open(sessions)
    assert ("S1", "door-main", "door_open") in _open(sessions)
    with sessions() as session:
        log = session.scalars(select(StreamIntervention)).one()
        assert (log.action, log.seq, log.actor, log.reason) == (
            "skip",
            2,
            "noc-q",
            "bug 42, event dropped",
        )
    # Nothing to decide any more.
    assert client.post(f"{path}/skip", json={"reason": "twice"}).status_code == 409


def test_a_release_after_the_fix_applies_the_event_it_failed_on(
    sessions: sessionmaker[Session], clock: ManualClock, store: BatchStore, poison: Poison
) -> None:
    _writer(sessions, clock, store).write([_msg(clock, _cursed(1))])
    poison.broken = False  # the collector was fixed
    client = _noc_client(sessions, clock, store)
    released = client.post(
        f"/api/v1/agents/a1/streams/{STREAM}/release", json={"reason": "fixed in 1.4.2"}
    )
    assert released.status_code == 200, released.text
    assert released.json()["applied_through"] == 1
    assert ("S1", "cursed", "door_open") in _open(sessions)


def test_a_viewer_reads_but_only_the_noc_decides(
    sessions: sessionmaker[Session], clock: ManualClock, store: BatchStore
) -> None:
    with sessions() as session:
        _, viewer = create_user(session, name="v", role=Role.VIEWER, now=clock.now())
        session.commit()
    client = TestClient(create_app(session_factory=sessions, clock=clock, ingest_store=store))
    headers = {"Authorization": f"Bearer {viewer}"}
    assert client.get("/api/v1/streams/quarantined", headers=headers).status_code == 200
    path = f"/api/v1/agents/a1/streams/{STREAM}/skip"
    assert client.post(path, json={"reason": "nope"}, headers=headers).status_code == 403
