"""Presence under a test clock: a jump is not silence, but silence after the jump still is."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.inventory.models import Agent, Site
from collector.listeners import alarm_engine
from collector.scheduler import Scheduler
from collector.tickets.flows import TicketAlarmListener

TIMEOUT_S = 90.0


def _agent_heard_now(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with sessions() as session:
        session.add(Site(site_id="PM-1", kind="pm", name="PM-1", region="Bretagne"))
        session.flush()  # no ORM relationship orders the two inserts
        session.add(Agent(agent_id="a1", site_id="PM-1", reachable=True, last_seen=clock.now()))
        session.commit()


def _tick(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    *,
    skipped_s: float = 0.0,
    watching_for_s: float = float("inf"),
) -> bool:
    """Run the timers; returns whether the agent is still reachable."""
    scheduler = Scheduler(
        engine=alarm_engine([TicketAlarmListener()]), will_grace_s=60, heartbeat_timeout_s=TIMEOUT_S
    )
    with sessions() as session:
        scheduler.run(session, now=clock.now(), skipped_s=skipped_s, watching_for_s=watching_for_s)
        session.commit()
        agent = session.get(Agent, "a1")
        assert agent is not None
        return agent.reachable


def test_a_clock_jump_does_not_make_a_live_agent_unreachable(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _agent_heard_now(sessions, clock)
    jump = timedelta(hours=48).total_seconds()
    clock.advance(seconds=jump + 5)
    assert _tick(sessions, clock, skipped_s=jump)
    with sessions() as session:
        assert session.query(Alarm).count() == 0


def test_silence_beyond_the_timeout_is_still_noticed_after_a_jump(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _agent_heard_now(sessions, clock)
    jump = timedelta(hours=48).total_seconds()
    clock.advance(seconds=jump + TIMEOUT_S + 1)
    assert not _tick(sessions, clock, skipped_s=jump)


def test_a_collector_cut_from_the_broker_does_not_take_agents_for_dead(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    """Ten minutes of broker outage: silence heard by a collector that heard nothing proves
    nothing. Presence is judged again once it has listened for a full heartbeat timeout."""
    _agent_heard_now(sessions, clock)
    clock.advance(minutes=10)
    assert _tick(sessions, clock, watching_for_s=0.0)  # still cut from the broker
    assert _tick(sessions, clock, watching_for_s=TIMEOUT_S - 1)  # back, not long enough
    assert not _tick(sessions, clock, watching_for_s=TIMEOUT_S)  # truly silent since
