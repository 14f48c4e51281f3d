"""Storing and applying batches: duplicates, reordering, gaps, dead letters, presence."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.ingest.admission import OVERSIZE_KEEP_BYTES
from collector.ingest.models import DeadLetter, DeadLetterTotal, InboundEvent, StreamState
from collector.ingest.store import BatchStore, Received
from collector.inventory.models import Agent
from collector.listeners import alarm_engine
from tests.collector.conftest import enrol

STREAM = "5f2b8c0e9a1d4c3b8e7f6a5b4c3d2e1f"
NAN = float("nan")


@pytest.fixture(autouse=True)
def _enrolled(sessions: sessionmaker[Session]) -> None:
    """Agent a1 is enrolled at site S1 (what it speaks for in these tests)."""
    enrol(sessions, {"a1": "S1"})


def _alarm(
    seq: int,
    transition: str = "raised",
    *,
    agent: str = "a1",
    stream: str = STREAM,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "alarm",
        "agent_id": agent,
        "stream_id": stream,
        "seq": seq,
        "ts": "2026-01-05T09:00:00Z",
        "clock_synced": True,
        "site_id": "S1",
        "equipment_id": "door-main",
        "point": f"contact{extra.get('point', 0)}",
        "alarm_type": "door_open",
        "transition": transition,
        "severity": "major",
    }


def _msg(
    clock: ManualClock, body: dict[str, Any], channel: str = "events", agent: str | None = None
) -> Received:
    topic = f"sw/v1/agents/{agent or body.get('agent_id', 'a1')}/{channel}"
    return Received(topic, json.dumps(body).encode(), clock.now())


def _run(sessions: sessionmaker[Session], clock: ManualClock, *items: Received) -> Any:
    store = BatchStore(alarm_engine())
    with sessions() as session:
        result = store.process(session, list(items), now=clock.now())
        session.commit()
    return result


def test_duplicates_are_stored_once_and_acked_again(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    first = _run(sessions, clock, _msg(clock, _alarm(1)), _msg(clock, _alarm(2, "cleared")))
    again = _run(sessions, clock, _msg(clock, _alarm(1)), _msg(clock, _alarm(2, "cleared")))
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert again.acks[("a1", STREAM)][0] == 2
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 2
        alarm = session.scalars(select(Alarm)).one()
        assert alarm.state == "cleared" and alarm.count == 1


def test_a_gap_waits_for_the_resend_and_then_applies_in_order(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    out_of_order = _run(sessions, clock, _msg(clock, _alarm(3, "raised")), _msg(clock, _alarm(1)))
    assert out_of_order.acks[("a1", STREAM)][0] == 1  # 3 is stored but waits for 2
    with sessions() as session:
        assert session.get(StreamState, ("a1", STREAM)).applied_through == 1  # type: ignore[union-attr]
    filled = _run(sessions, clock, _msg(clock, _alarm(2, "cleared")))
    assert filled.acks[("a1", STREAM)][0] == 3
    with sessions() as session:
        # raised(1), cleared(2), raised(3): a second occurrence, whatever the arrival order
        alarms = list(session.scalars(select(Alarm).order_by(Alarm.id)))
        assert [a.state for a in alarms] == ["cleared", "active"]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("sw/v1/agents/a1/events", b"\\xff\\xfe", "not_json"),
        ("sw/v1/agents/a1/events", b"[1, 2]", "not_object"),
        ("sw/v1/agents/a1/events", json.dumps({**_alarm(1), "v": 7}).encode(), "unknown_version"),
        # Valid but for the version left out (the models default it): still refused.
        (
            "sw/v1/agents/a1/events",
            json.dumps({k: v for k, v in _alarm(1).items() if k != "v"}).encode(),
            "unknown_version",
        ),
        ("sw/v1/agents/a1/events", json.dumps({**_alarm(1), "seq": -1}).encode(), "invalid"),
        ("sw/v1/agents/a1/telemetry", json.dumps(_alarm(1)).encode(), "wrong_channel"),
        ("sw/v1/agents/other/events", json.dumps(_alarm(1)).encode(), "identity_mismatch"),
        ("sw/v2/agents/a1/events", json.dumps(_alarm(1)).encode(), "bad_topic"),
        ("sw/v1/agents/a1/events", b"{" + b" " * 300_000 + b"}", "oversized"),
        # What once took a whole batch down with it (a TypeError, a RecursionError).
        ("sw/v1/agents/a1/events", b'{"v":1,"kind":[]}', "wrong_channel"),
        ("sw/v1/agents/a1/events", b'{"v":1,"kind":{}}', "wrong_channel"),
        ("sw/v1/agents/a1/events", b"[" * 5_000 + b"]" * 5_000, "too_deep"),
        ("sw/v1/agents/a1/events", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "too_deep"),
        # Numbers are numbers, measures are finite.
        ("sw/v1/agents/a1/events", json.dumps({**_alarm(1), "seq": "1"}).encode(), "invalid"),
        ("sw/v1/agents/a1/events", json.dumps({**_alarm(1), "seq": True}).encode(), "invalid"),
        ("sw/v1/agents/a1/events", json.dumps({**_alarm(1), "value": NAN}).encode(), "invalid"),
        (
            "sw/v1/agents/a1/events",
            json.dumps({**_alarm(1), "value": 1.5}).replace("1.5", "1e999").encode(),
            "invalid",
        ),
        # Admitted only from an enrolled agent, for its own site, never a collector's alarm.
        (
            "sw/v1/agents/a1/events",
            json.dumps({**_alarm(1), "site_id": "S2"}).encode(),
            "foreign_site",
        ),
        (
            "sw/v1/agents/zz/events",
            json.dumps({**_alarm(1), "agent_id": "zz"}).encode(),
            "unenrolled_agent",
        ),
        (
            "sw/v1/agents/a1/events",
            json.dumps(
                {**_alarm(1), "equipment_id": "agent", "alarm_type": "agent_misbehaving"}
            ).encode(),
            "reserved_identity",
        ),
    ],
)
def test_bad_messages_are_dead_lettered_with_raw_bytes_and_reason(
    sessions: sessionmaker[Session], clock: ManualClock, topic: str, payload: bytes, reason: str
) -> None:
    good = _msg(clock, _alarm(1))
    result = _run(sessions, clock, Received(topic, payload, clock.now()), good)
    assert dict(result.dead_letters) == {reason: 1}
    assert result.stored == 1  # the valid message in the same batch is not held back
    with sessions() as session:
        letter = session.scalars(select(DeadLetter)).one()
        assert (letter.reason, letter.topic) == (reason, topic)
        assert (letter.size, letter.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
        # Raw bytes kept whole, but for an oversized payload: its start only.
        kept = payload[:OVERSIZE_KEEP_BYTES] if reason == "oversized" else payload
        assert letter.payload == kept
        totals = dict(session.execute(select(DeadLetterTotal.reason, DeadLetterTotal.total)).all())
        assert totals == {reason: 1}


def _birth(
    seq: int, boot: int, alarms: list[dict[str, Any]], *, stream: str = STREAM
) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "birth",
        "agent_id": "a1",
        "stream_id": stream,
        "seq": seq,
        "ts": "2026-01-05T09:00:00Z",
        "clock_synced": False,
        "site_id": "S1",
        "boot": boot,
        "agent_version": "t",
        "config_hash": "h",
        "alarms": alarms,
    }


def _will(boot: int, *, stream: str = STREAM) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "will",
        "agent_id": "a1",
        "stream_id": stream,
        "seq": 0,
        "ts": "2026-01-05T09:00:00Z",
        "clock_synced": False,
        "site_id": "S1",
        "boot": boot,
    }


def test_birth_reconciles_only_once_the_events_it_summarises_are_applied(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _alarm(1, point=1)), _msg(clock, _alarm(2, point=2)))
    # Birth says seq 3 happened and only contact2 is active; seq 3 (clear of contact1) is late.
    _run(
        sessions,
        clock,
        _msg(
            clock,
            _birth(
                3,
                2,
                [
                    {
                        "equipment_id": "door-main",
                        "point": "contact2",
                        "alarm_type": "door_open",
                        "severity": "major",
                        "since": "2026-01-05T09:00:00Z",
                    }
                ],
            ),
            "status",
        ),
    )
    with sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(Alarm).where(Alarm.state == "active"))
            == 2
        )
    _run(sessions, clock, _msg(clock, _alarm(3, "cleared", point=1)))
    with sessions() as session:
        active = list(session.scalars(select(Alarm.point).where(Alarm.state == "active")))
        assert active == ["contact2"]


def test_a_stale_will_is_ignored_and_a_current_one_marks_the_agent_away(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _run(sessions, clock, _msg(clock, _birth(0, 5, []), "status"))
    _run(sessions, clock, _msg(clock, _will(4), "status"))
    with sessions() as session:
        assert session.get(Agent, "a1").reachable  # type: ignore[union-attr]
    clock.advance(seconds=1)
    _run(sessions, clock, _msg(clock, _will(5), "status"))
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None and not agent.reachable
        assert agent.unreachable_since == clock.now()
        assert agent.unreachable_since - timedelta(seconds=1) < clock.now()


def test_a_replaced_sd_card_is_accepted_though_its_boot_restarts_and_the_old_card_is_stale(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    new_card = "b" * 32
    _run(sessions, clock, _msg(clock, _birth(0, 40, []), "status"))
    clock.advance(seconds=60)
    # The technician swapped the card: a new outbox, a new stream, the boot counter back at 1.
    _run(sessions, clock, _msg(clock, _birth(0, 1, [], stream=new_card), "status"))
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None and agent.reachable
        assert (agent.stream_id, agent.boot) == (new_card, 1)
    # The old card's birth and Will, delivered late (higher boot, older stream): ignored.
    clock.advance(seconds=1)
    _run(sessions, clock, _msg(clock, _birth(0, 40, []), "status"))
    _run(sessions, clock, _msg(clock, _will(40), "status"))
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None and agent.reachable
        assert (agent.stream_id, agent.boot) == (new_card, 1)
    # The new card's own Will is believed.
    _run(sessions, clock, _msg(clock, _will(1, stream=new_card), "status"))
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None and not agent.reachable


def test_a_volatile_stream_is_one_more_stream_and_leaves_presence_alone(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    """docs/protocol.md, "The volatile stream": events an agent kept in memory while its disk
    failed come on a stream of their own, applied in its own seq order and acked on it."""
    volatile = "c" * 32
    storage = {**_alarm(1, stream=volatile), "equipment_id": "agent", "point": "storage"}
    storage |= {"alarm_type": "storage_fault", "value": "full"}
    _run(sessions, clock, _msg(clock, _birth(0, 3, []), "status"))
    _run(sessions, clock, _msg(clock, _alarm(1, point=1)))
    # The door's clear, kept in memory, arrives before the storage alarm that precedes it.
    first = _run(sessions, clock, _msg(clock, _alarm(2, "cleared", point=1, stream=volatile)))
    assert first.acks[("a1", volatile)][0] == 0
    second = _run(sessions, clock, _msg(clock, storage))
    assert second.acks[("a1", volatile)][0] == 2
    with sessions() as session:
        states = dict(session.execute(select(Alarm.alarm_type, Alarm.state)).all())
        assert states == {"door_open": "cleared", "storage_fault": "active"}
    # The outbox's stream is still the agent's: its birth (whose snapshot lists what the
    # volatile stream raised) and its Will are current.
    snapshot = [{**{k: storage[k] for k in ("equipment_id", "point", "alarm_type")}}]
    snapshot[0] |= {"severity": "major", "since": "2026-01-05T09:00:00Z"}
    clock.advance(seconds=1)
    _run(sessions, clock, _msg(clock, _birth(1, 3, snapshot), "status"))
    with sessions() as session:
        states = dict(session.execute(select(Alarm.alarm_type, Alarm.state)).all())
        assert states == {"door_open": "cleared", "storage_fault": "active"}
    _run(sessions, clock, _msg(clock, _will(3), "status"))
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None and agent.stream_id == STREAM and not agent.reachable
