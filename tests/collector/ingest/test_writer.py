"""Committing batches: transient database errors are retried as a whole batch, not dead-lettered
message by message; a message failing on its own with a real error is dead-lettered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.ingest.models import DeadLetter, InboundEvent, StreamState
from collector.ingest.store import BatchResult, BatchStore, Received
from collector.ingest.writer import BatchWriter, is_transient
from collector.listeners import alarm_engine
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from tests.collector.conftest import enrol

STREAM = "c" * 32


@pytest.fixture(autouse=True)
def _enrolled(sessions: sessionmaker[Session]) -> None:
    enrol(sessions, {"w1": "S-W1"})


def _alarm(seq: int, *, point: str = "contact") -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "alarm",
        "agent_id": "w1",
        "stream_id": STREAM,
        "seq": seq,
        "ts": "2026-01-05T09:00:00Z",
        "clock_synced": True,
        "site_id": "S-W1",
        "equipment_id": "door-main",
        "point": point,
        "alarm_type": "door_open",
        "transition": "raised",
        "severity": "major",
    }


def _msg(clock: ManualClock, body: dict[str, Any]) -> Received:
    return Received("sw/v1/agents/w1/events", json.dumps(body).encode(), clock.now())


def _lost_connection() -> OperationalError:
    return OperationalError(
        "COMMIT", {}, Exception("server closed the connection unexpectedly"), True
    )


class FlakySessions:
    """Sessions whose commit fails with ``error`` for the first ``failures`` transactions."""

    def __init__(self, sessions: sessionmaker[Session], failures: int, error: Exception) -> None:
        self._sessions = sessions
        self.failures = failures
        self._error = error

    def __call__(self) -> Session:
        session = self._sessions()
        if self.failures > 0:
            self.failures -= 1

            def commit() -> None:
                session.rollback()
                raise self._error

            session.commit = commit  # type: ignore[method-assign]
        return session


class PoisonedStore(BatchStore):
    """Fails with a non-transient database error on any batch holding the poisoned seq."""

    def __init__(self, poisoned_seq: int) -> None:
        super().__init__(alarm_engine())
        self._poisoned = poisoned_seq

    def process(self, session: Session, batch: Any, *, now: Any) -> BatchResult:
        if any(json.loads(item.payload)["seq"] == self._poisoned for item in batch):
            raise IntegrityError("INSERT ...", {}, Exception("value violates a constraint"))
        return super().process(session, batch, now=now)


def _writer(sessions: Any, clock: ManualClock, store: BatchStore | None = None) -> BatchWriter:
    return BatchWriter(
        sessions=sessions,
        store=store or BatchStore(alarm_engine()),
        now=clock.now,
        backoff_s=0.001,
        sleep=lambda _s: None,
    )


def _count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_lost_connection_retries_the_whole_batch(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    flaky = FlakySessions(sessions, failures=2, error=_lost_connection())
    batch = [_msg(clock, _alarm(seq)) for seq in (1, 2, 3)]
    outcome = _writer(flaky, clock).write(batch)
    assert outcome.retries == 2
    assert (outcome.result.stored, outcome.abandoned) == (3, 0)
    assert outcome.result.acks[("w1", STREAM)][0] == 3  # acked as one batch, in order
    assert not outcome.result.dead_letters
    assert (_count(sessions, InboundEvent), _count(sessions, DeadLetter)) == (3, 0)


def test_a_batch_failing_transiently_throughout_is_neither_acked_nor_dead_lettered(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    flaky = FlakySessions(sessions, failures=100, error=_lost_connection())
    outcome = _writer(flaky, clock).write([_msg(clock, _alarm(1)), _msg(clock, _alarm(2))])
    assert outcome.abandoned == 2  # the agent re-sends what is not acked
    assert not outcome.result.acks and not outcome.result.dead_letters
    assert (_count(sessions, InboundEvent), _count(sessions, DeadLetter)) == (0, 0)


def test_only_the_message_failing_on_its_own_is_dead_lettered(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    batch = [_msg(clock, _alarm(seq, point=f"p{seq}")) for seq in (1, 2, 3)]
    outcome = _writer(sessions, clock, PoisonedStore(poisoned_seq=2)).write(batch)
    assert dict(outcome.result.dead_letters) == {"db_error": 1}
    assert outcome.result.stored == 2
    with sessions() as session:
        letter = session.scalars(select(DeadLetter)).one()
        assert json.loads(letter.payload)["seq"] == 2
        stored = sorted(session.scalars(select(InboundEvent.seq)))
        assert stored == [1, 3]


class BuggyStore(BatchStore):
    """A bug that is no database error: any batch holding the poisoned seq raises TypeError.
    Counts its transactions."""

    def __init__(self, poisoned_seq: int) -> None:
        super().__init__(alarm_engine())
        self._poisoned = poisoned_seq
        self.calls = 0

    def process(self, session: Session, batch: Any, *, now: Any) -> BatchResult:
        self.calls += 1
        if any(json.loads(item.payload)["seq"] == self._poisoned for item in batch):
            raise TypeError("unhashable type: 'list'")
        return super().process(session, batch, now=now)


def test_a_bug_costs_one_message_and_a_few_transactions_not_the_batch(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    batch = [_msg(clock, _alarm(seq, point=f"p{seq}")) for seq in range(1, 65)]
    store = BuggyStore(poisoned_seq=37)
    outcome = _writer(sessions, clock, store).write(batch)
    assert dict(outcome.result.dead_letters) == {"internal_error": 1}
    assert (outcome.result.stored, outcome.abandoned) == (63, 0)
    # Halved down to the message at fault: two transactions a level, not one per message.
    assert store.calls <= 2 * 6 + 1
    with sessions() as session:
        letter = session.scalars(select(DeadLetter)).one()
        assert json.loads(letter.payload)["seq"] == 37
        assert "TypeError" in letter.detail
        # The stream waits behind the gap, visibly: quarantined at 37 for the NOC.
        state = session.get(StreamState, ("w1", STREAM))
        assert state is not None
        assert (state.applied_through, state.quarantine_seq) == (36, 37)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_lost_connection(), True),
        (OperationalError("SELECT", {}, Exception("database is locked")), True),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    ],
)
def test_which_errors_are_transient(error: Any, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.fixture
def pg_sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    create_schema(engine)
    factory = make_session_factory(engine)
    enrol(factory, {"w1": "S-W1"})
    yield factory
    engine.dispose()


def test_a_real_postgresql_deadlock_is_retried_as_a_batch(
    pg_sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    """Another transaction holds the stream's lock row and then waits for a row the batch has
    just inserted: PostgreSQL aborts the batch (it waited first), which is retried and stored."""
    writer = BatchWriter(sessions=pg_sessions, store=BatchStore(alarm_engine()), now=clock.now)
    assert writer.write([_msg(clock, _alarm(1))]).result.stored == 1  # the stream exists
    with pg_sessions() as other:
        other.execute(
            select(StreamState).where(StreamState.stream_id == STREAM).with_for_update()
        ).all()
        outcomes: list[Any] = []
        thread = threading.Thread(
            target=lambda: outcomes.append(writer.write([_msg(clock, _alarm(2))]))
        )
        thread.start()
        time.sleep(0.5)  # the batch inserted seq 2 and now waits for the stream's row lock
        other.execute(
            sa.text(
                "INSERT INTO inbound_events (agent_id, stream_id, seq, kind, payload,"
                " received_at, applied) VALUES ('w1', :stream, 2, 'alarm', '{}', now(), false)"
            ),
            {"stream": STREAM},
        )
        other.rollback()  # reached once PostgreSQL aborted the batch's transaction
        thread.join(timeout=30)
    (outcome,) = outcomes
    assert outcome.retries >= 1
    assert (outcome.result.stored, outcome.abandoned) == (1, 0)
    assert outcome.result.acks[("w1", STREAM)][0] == 2
    assert not outcome.result.dead_letters
    assert (_count(pg_sessions, InboundEvent), _count(pg_sessions, DeadLetter)) == (2, 0)
