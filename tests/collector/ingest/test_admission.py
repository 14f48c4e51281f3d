"""Admission: an agent speaks only for the site it is enrolled for; what it may not send is
dead-lettered, counted as one misbehaving alarm on its own site, and harms nobody else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.ingest.models import DeadLetter
from collector.inventory.models import Agent, Site, UnenrolledAgent
from collector.listeners import alarm_engine
from protocol.messages import MAX_SNAPSHOT_ALARMS
from tests.collector.conftest import enrol
from tests.collector.ingest.test_store import STREAM, _alarm, _birth, _msg, _run


@pytest.fixture(autouse=True)
def _enrolled(sessions: sessionmaker[Session]) -> None:
    enrol(sessions, {"a1": "S1", "b1": "S2"})


def _open_alarms(sessions: sessionmaker[Session]) -> list[tuple[str, str, str, int]]:
    with sessions() as session:
        rows = session.execute(
            select(Alarm.site_id, Alarm.equipment_id, Alarm.alarm_type, Alarm.count)
            .where(Alarm.state != "cleared")
            .order_by(Alarm.site_id, Alarm.alarm_type)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _foreign(seq: int) -> dict[str, Any]:
    return {**_alarm(seq), "site_id": "S2", "alarm_type": "fire", "severity": "critical"}


def test_an_alarm_for_another_site_reaches_nobody_there_and_flags_the_sender(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    for seq in (1, 2, 3):
        result = _run(sessions, clock, _msg(clock, _foreign(seq)))
        assert dict(result.dead_letters) == {"foreign_site": 1}
    # B's site has nothing; A's own site has one misbehaving alarm counting the three.
    assert _open_alarms(sessions) == [("S1", "agent", "agent_misbehaving", 3)]
    with sessions() as session:
        reasons = session.scalars(select(DeadLetter.detail)).all()
    assert all("bound to site S1, not S2" in r for r in reasons)


def test_the_misbehaving_alarm_clears_after_a_quiet_while(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _foreign(1)))
    engine = alarm_engine()
    clock.advance(minutes=14)
    with sessions() as session:
        assert engine.settle_misbehaving(session, now=clock.now()) == 0
        session.commit()
    clock.advance(minutes=1)
    with sessions() as session:
        assert engine.settle_misbehaving(session, now=clock.now()) == 1
        session.commit()
    assert _open_alarms(sessions) == []


def test_an_agent_cannot_clear_the_alarm_that_says_it_misbehaves(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _foreign(1)))
    clear = {
        **_alarm(2, "cleared"),
        "equipment_id": "agent",
        "point": "ingest",
        "alarm_type": "agent_misbehaving",
    }
    snapshot_omitting_it = _birth(1, 1, [])
    result = _run(
        sessions,
        clock,
        _msg(clock, clear),
        _msg(clock, snapshot_omitting_it, "status"),
    )
    assert dict(result.dead_letters) == {"reserved_identity": 1}
    assert _open_alarms(sessions) == [("S1", "agent", "agent_misbehaving", 2)]


def test_an_unenrolled_agent_is_held_and_attaches_no_site(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    stranger = {**_alarm(1), "agent_id": "stranger", "site_id": "S1"}
    heartbeat_like = {**_alarm(2), "agent_id": "stranger", "site_id": "S1"}
    result = _run(
        sessions,
        clock,
        _msg(clock, stranger, agent="stranger"),
        _msg(clock, heartbeat_like, agent="stranger"),
    )
    assert dict(result.dead_letters) == {"unenrolled_agent": 2}
    assert not result.acks  # not acked: once enrolled, its re-sends are taken
    with sessions() as session:
        held = session.get(UnenrolledAgent, "stranger")
        assert held is not None
        assert (held.claimed_site_id, held.messages) == ("S1", 2)
        assert session.get(Agent, "stranger") is None
        assert session.get(Agent, "a1").site_id == "S1"  # type: ignore[union-attr]
    assert _open_alarms(sessions) == []  # nobody's site is touched, no misbehaving alarm
    enrol(sessions, {"stranger": "S3"})
    with sessions() as session:
        assert session.get(UnenrolledAgent, "stranger") is None
        assert session.get(Site, "S3") is not None


def test_a_birth_listing_more_alarms_than_a_site_has_is_refused(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    alarms = [
        {
            "equipment_id": f"eq-{i}",
            "point": "p",
            "alarm_type": "fire",
            "severity": "critical",
            "since": "2026-01-05T08:59:00Z",
        }
        for i in range(MAX_SNAPSHOT_ALARMS + 1)
    ]
    result = _run(sessions, clock, _msg(clock, _birth(0, 1, alarms), "status"))
    assert dict(result.dead_letters) == {"invalid": 1}
    assert _open_alarms(sessions) == [("S1", "agent", "agent_misbehaving", 1)]


def test_poison_from_one_agent_costs_another_nothing(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    """The poison pill and the depth bomb arrive in the same batch as B's alarms."""
    b_alarm = {**_alarm(1), "agent_id": "b1", "site_id": "S2"}
    result = _run(
        sessions,
        clock,
        _msg(clock, b_alarm, agent="b1"),
        _msg(clock, {"v": 1, "kind": []}, agent="a1"),
        _msg(clock, json.loads("[" * 100 + "]" * 100), agent="a1"),
    )
    assert dict(result.dead_letters) == {"wrong_channel": 1, "too_deep": 1}
    assert result.acks[("b1", STREAM)][0] == 1
    assert ("S2", "door-main", "door_open", 1) in _open_alarms(sessions)
