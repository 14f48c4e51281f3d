"""Event time: raises and clears corrected alike, telemetry too, an untrusted clock on receive
time, and a heartbeat that arrives late moves nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.ingest.store import BatchStore, Received
from collector.inventory.models import Agent
from collector.listeners import alarm_engine
from collector.telemetry.service import series
from tests.collector.conftest import enrol

STREAM = "5f2b8c0e9a1d4c3b8e7f6a5b4c3d2e1f"
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _enrolled(sessions: sessionmaker[Session]) -> None:
    enrol(sessions, {"a1": "S1"})


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _envelope(
    kind: str, seq: int, ts: datetime, synced: bool, offset: float | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "kind": kind,
        "agent_id": "a1",
        "stream_id": STREAM,
        "seq": seq,
        "ts": _iso(ts),
        "clock_synced": synced,
        "site_id": "S1",
    }
    if offset is not None:
        body["clock_offset_s"] = offset
    return body


def _alarm(
    seq: int, transition: str, ts: datetime, *, synced: bool, offset: float | None
) -> dict[str, Any]:
    return {
        **_envelope("alarm", seq, ts, synced, offset),
        "equipment_id": "door-main",
        "point": "contact",
        "alarm_type": "door_open",
        "transition": transition,
        "severity": "major",
    }


def _heartbeat(ts: datetime, *, offset: float | None = None) -> dict[str, Any]:
    return {
        **_envelope("heartbeat", 0, ts, True, offset),
        "boot": 1,
        "config_hash": "h",
        "outbox": {"events_pending": 0, "telemetry_pending": 0},
    }


def _deliver(
    sessions: sessionmaker[Session], body: dict[str, Any], channel: str, received_at: datetime
) -> None:
    item = Received(f"sw/v1/agents/a1/{channel}", json.dumps(body).encode(), received_at)
    with sessions() as session:
        BatchStore(alarm_engine()).process(session, [item], now=received_at)
        session.commit()


def _door(sessions: sessionmaker[Session]) -> Alarm:
    with sessions() as session:
        return session.scalars(select(Alarm).where(Alarm.alarm_type == "door_open")).one()


@pytest.mark.parametrize("synced", [True, False], ids=["synced", "unsynced"])
@pytest.mark.parametrize("step", [HOUR, -timedelta(minutes=10)], ids=["+1h", "-10min"])
def test_a_stepped_clock_with_its_offset_stores_raise_and_clear_on_true_time(
    sessions: sessionmaker[Session], clock: ManualClock, synced: bool, step: timedelta
) -> None:
    # The box's clock reads ``step`` off; it measured that, and says so in every message.
    opened = clock.now()
    closed = opened + timedelta(seconds=63)
    offset = -step.total_seconds()
    _deliver(
        sessions,
        _alarm(1, "raised", opened + step, synced=synced, offset=offset),
        "events",
        opened + timedelta(seconds=0.2),
    )
    _deliver(
        sessions,
        _alarm(2, "cleared", closed + step, synced=synced, offset=offset),
        "events",
        closed + timedelta(seconds=0.2),
    )
    door = _door(sessions)
    assert door.state == "cleared"
    assert (door.first_seen, door.raised_at, door.cleared_at) == (opened, opened, closed)


def test_an_unsynchronised_clock_without_offset_falls_back_to_receive_time_for_both(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    # A Pi just booted without RTC: 1970, and nothing measured yet.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    opened, closed = clock.now(), clock.now() + timedelta(seconds=63)
    _deliver(sessions, _alarm(1, "raised", epoch, synced=False, offset=None), "events", opened)
    _deliver(
        sessions,
        _alarm(2, "cleared", epoch + timedelta(seconds=63), synced=False, offset=None),
        "events",
        closed,
    )
    door = _door(sessions)
    assert (door.first_seen, door.cleared_at) == (opened, closed)


def test_a_synchronised_clock_without_offset_is_taken_as_it_is(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    opened = clock.now()
    _deliver(
        sessions,
        _alarm(1, "raised", opened, synced=True, offset=None),
        "events",
        opened + timedelta(seconds=40),
    )
    assert _door(sessions).first_seen == opened


@pytest.mark.parametrize("offset", [None, 0.0], ids=["older-agent", "measured"])
def test_a_heartbeat_delivered_80_s_late_moves_no_stored_time(
    sessions: sessionmaker[Session], clock: ManualClock, offset: float | None
) -> None:
    # Written before a half-open link was noticed, delivered after the reconnect.
    written = clock.now()
    clock.advance(seconds=80)
    _deliver(sessions, _heartbeat(written, offset=offset), "heartbeat", clock.now())
    opened = clock.now()
    _deliver(sessions, _alarm(1, "raised", opened, synced=True, offset=offset), "events", opened)
    assert _door(sessions).first_seen == opened
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None
        # The skew shown is the agent's own measure (none: not measured), never 80 s.
        assert agent.clock_skew_s == (None if offset is None else 0.0)


def test_the_skew_shown_for_an_agent_is_its_measured_offset(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    # An hour ahead, written 80 s before it arrived: the skew is the hour the agent measured.
    written = clock.now() + HOUR - timedelta(seconds=80)
    _deliver(sessions, _heartbeat(written, offset=-3600.0), "heartbeat", clock.now())
    with sessions() as session:
        agent = session.get(Agent, "a1")
        assert agent is not None and agent.clock_skew_s == 3600.0


@pytest.mark.parametrize(
    ("synced", "offset", "edge_ahead"),
    [(True, -3600.0, HOUR), (False, None, timedelta(days=-20000))],
    ids=["offset", "unsynced-receive-time"],
)
def test_telemetry_samples_are_stored_on_the_collector_clock(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    synced: bool,
    offset: float | None,
    edge_ahead: timedelta,
) -> None:
    received = clock.now()
    taken = [received - timedelta(seconds=20), received - timedelta(seconds=10)]
    body = {
        **_envelope("telemetry", 1, received + edge_ahead, synced, offset),
        "samples": [
            {
                "equipment_id": "env-1",
                "point": "temperature",
                "value": 20.0 + n,
                "unit": "degC",
                "ts": _iso(at + edge_ahead),
            }
            for n, at in enumerate(taken)
        ],
    }
    _deliver(sessions, body, "telemetry", received)
    with sessions() as session:
        stored = [
            p.at
            for p in sorted(
                series(
                    session,
                    site_id="S1",
                    equipment_id="env-1",
                    point="temperature",
                    since=datetime.min.replace(tzinfo=UTC),
                    until=datetime.max.replace(tzinfo=UTC),
                    resolution="raw",
                ),
                key=lambda p: p.mean,
            )
        ]
    assert [at.replace(tzinfo=UTC) if at.tzinfo is None else at for at in stored] == taken


def test_a_birth_snapshot_is_dated_by_its_offset(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    since = clock.now() - timedelta(minutes=5)
    birth = {
        **_envelope("birth", 0, clock.now() + HOUR, True, -3600.0),
        "boot": 1,
        "agent_version": "t",
        "config_hash": "h",
        "alarms": [
            {
                "equipment_id": "door-main",
                "point": "contact",
                "alarm_type": "door_open",
                "severity": "major",
                "since": _iso(since + HOUR),
            }
        ],
    }
    _deliver(sessions, birth, "status", clock.now())
    assert _door(sessions).first_seen == since


def test_an_offset_beyond_the_calendar_falls_back_to_receive_time(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    far = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    _deliver(
        sessions, _alarm(1, "raised", far, synced=True, offset=86_400.0), "events", clock.now()
    )
    assert _door(sessions).first_seen == clock.now()
