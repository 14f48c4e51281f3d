"""Agent presence: a Will or missed heartbeats make a site's alarms unknown, never cleared."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.alarms.engine import AGENT_EQUIPMENT, UNREACHABLE_TYPE, AlarmEngine
from collector.alarms.models import Alarm
from collector.sites.models import Agent


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
    for agent in session.scalars(
        select(Agent).where(Agent.reachable.is_(True), Agent.last_seen < silent_since)
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
    for agent in session.scalars(
        select(Agent).where(Agent.reachable.is_(False), Agent.unreachable_since <= grace_over)
    ):
        if _has_open_unreachable(session, agent.site_id):
            continue
        engine.agent_unreachable(
            session,
            site_id=agent.site_id,
            agent_id=agent.agent_id,
            reason="Last Will: the agent lost its connection and did not come back",
            now=now,
        )
        raised += 1
    return raised


def _has_open_unreachable(session: Session, site_id: str) -> bool:
    return (
        session.scalars(
            select(Alarm.id).where(
                Alarm.site_id == site_id,
                Alarm.equipment_id == AGENT_EQUIPMENT,
                Alarm.alarm_type == UNREACHABLE_TYPE,
                Alarm.state != "cleared",
            )
        ).first()
        is not None
    )
