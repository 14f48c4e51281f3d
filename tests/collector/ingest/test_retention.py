"""Applied events are pruned after their retention; re-sends of them stay duplicates; an event
waiting behind a gap is never pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.ingest.models import DeadLetter, DeadLetterTotal, InboundEvent
from collector.ingest.retention import (
    DEFAULT_EVENT_RETENTION,
    prune_applied_events,
    prune_dead_letters,
)
from collector.ingest.store import Received
from collector.listeners import alarm_engine
from collector.scheduler import Scheduler
from tests.collector.conftest import enrol
from tests.collector.ingest.test_store import STREAM, _alarm, _msg, _run


@pytest.fixture(autouse=True)
def _enrolled(sessions: sessionmaker[Session]) -> None:
    enrol(sessions, {"a1": "S1", "a2": "S1"})


def _stored(sessions: sessionmaker[Session]) -> dict[int, bool]:
    with sessions() as session:
        return dict(session.execute(select(InboundEvent.seq, InboundEvent.applied)).all())


def test_applied_events_past_the_retention_go_and_waiting_ones_stay(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _alarm(1)), _msg(clock, _alarm(2, "cleared")))
    _run(sessions, clock, _msg(clock, _alarm(4)))  # 3 is missing: 4 waits
    clock.advance(hours=24 * 20)
    _run(sessions, clock, _msg(clock, _alarm(1, point=1, agent="a2")))
    clock.advance(hours=24 * 11)  # 31 days after the first ones, 11 after a2's
    with sessions() as session:
        assert prune_applied_events(session, now=clock.now()) == 2
        session.commit()
    assert _stored(sessions) == {4: False, 1: True}  # a1's waiting 4, and a2's recent 1
    with sessions() as session:
        assert session.scalars(select(Alarm.state).order_by(Alarm.id)).all() == [
            "cleared",
            "active",
        ]


def test_a_resend_of_a_pruned_event_is_a_duplicate_and_changes_nothing(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _alarm(1)), _msg(clock, _alarm(2, "cleared")))
    clock.advance(hours=24 * 31)
    with sessions() as session:
        prune_applied_events(session, now=clock.now())
        session.commit()
    assert _stored(sessions) == {}
    # The agent never saw the ack (it was offline a month) and re-sends both, then a new one.
    again = _run(
        sessions,
        clock,
        _msg(clock, _alarm(1)),
        _msg(clock, _alarm(2, "cleared")),
        _msg(clock, _alarm(3)),
    )
    assert (again.stored, again.duplicates) == (1, 2)
    assert again.acks[("a1", STREAM)][0] == 3
    assert _stored(sessions) == {3: True}
    with sessions() as session:
        alarms = session.scalars(select(Alarm).order_by(Alarm.id)).all()
        # raised, cleared once; then the new raise: a second occurrence, not a third
        assert [(a.state, a.count) for a in alarms] == [("cleared", 1), ("active", 1)]


def test_the_scheduler_prunes_with_the_telemetry_retention_run(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _alarm(1)))
    clock.advance(seconds=(DEFAULT_EVENT_RETENTION + timedelta(minutes=1)).total_seconds())
    scheduler = Scheduler(engine=alarm_engine([]), will_grace_s=30, heartbeat_timeout_s=180)
    with sessions() as session:
        assert scheduler.run(session, now=clock.now())
        session.commit()
    assert _stored(sessions) == {}


def test_dead_letters_go_by_age_then_by_size_and_their_counts_stay(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    garbage = [Received("sw/v1/agents/a1/events", b"x" * 1000, clock.now()) for _ in range(3)]
    _run(sessions, clock, *garbage)
    clock.advance(hours=24 * 20)
    _run(sessions, clock, *[Received("sw/v1/agents/a1/events", b"y" * 1000, clock.now())] * 5)
    clock.advance(hours=24 * 11)  # the first three are 31 days old
    with sessions() as session:
        # Age first (3 go), then size: 2,500 bytes hold the two newest of the other five.
        assert prune_dead_letters(session, now=clock.now(), max_bytes=2_500) == 6
        session.commit()
        assert session.scalars(select(DeadLetter.payload)).all() == [b"y" * 1000] * 2
        totals = session.execute(select(DeadLetterTotal.reason, DeadLetterTotal.total)).all()
        assert totals == [("not_json", 8)]
