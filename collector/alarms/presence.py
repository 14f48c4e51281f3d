"""Agent presence: a Will or missed heartbeats make a site's alarms unknown, never cleared."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.alarms.engine import AGENT_EQUIPMENT, UNREACHABLE_TYPE, AlarmEngine
from collector.alarms.models import Alarm
from collector.inventory.models import Agent


def check_presence(
    session: Session,
    *,
    engine: AlarmEngine,
    now: datetime,
    will_grace_s: float,
    heartbeat_timeout_s: float,
) -> int:
    """Raise agent-unreachable where due; returns how many agents became unreachable."""
    raised = 0
    silent_since = now - timedelta(seconds=heartbeat_timeout_s)
    # SKIP LOCKED: an agent row that ingest is updating is hearing from its agent right now;
    # the others are locked, and their silence re-checked, before they are declared away.
    for agent in session.scalars(
        select(Agent)
        .where(Agent.reachable.is_(True), Agent.last_seen < silent_since)
        .with_for_update(skip_locked=True)
    ):
        agent.reachable = False
        agent.unreachable_since = now
        engine.agent_unreachable(
            session,
            site_id=agent.site_id,
            agent_id=agent.agent_id,
            reason=f"no heartbeat for {heartbeat_timeout_s:.0f} s",
            now=now,
        )
        raised += 1
    grace_over = now - timedelta(seconds=will_grace_s)
    # One query for the whole fleet: a national outage leaves thousands of agents away, and
    # this runs every tick.
    alarm_open = (
        select(Alarm.id)
        .where(
            Alarm.site_id == Agent.site_id,
            Alarm.equipment_id == AGENT_EQUIPMENT,
            Alarm.alarm_type == UNREACHABLE_TYPE,
            Alarm.state != "cleared",
        )
        .exists()
    )
    for agent in session.scalars(
        select(Agent)
        .where(Agent.reachable.is_(False), Agent.unreachable_since <= grace_over, ~alarm_open)
        .with_for_update(skip_locked=True)
    ):
        engine.agent_unreachable(
            session,
            site_id=agent.site_id,
            agent_id=agent.agent_id,
            reason="Last Will: the agent lost its connection and did not come back",
            now=now,
        )
        raised += 1
    return raised
