"""What the NOC reviews of what agents sent: agent ids heard but never enrolled, refused
messages (dead letters), and quarantined streams with the site of their agent."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.ingest.models import DeadLetter, StreamState
from collector.ingest.quarantine import quarantined_streams
from collector.inventory.models import Agent, UnenrolledAgent


def unenrolled_agents(session: Session) -> Sequence[UnenrolledAgent]:
    """Agent ids heard on the broker that no enrolment knows, latest first."""
    return session.scalars(select(UnenrolledAgent).order_by(UnenrolledAgent.last_seen.desc())).all()


def dead_letters(
    session: Session, *, reason: str | None, agent_id: str | None, limit: int
) -> Sequence[DeadLetter]:
    """The latest refused messages, by reason or agent when given."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if reason is not None:
        query = query.where(DeadLetter.reason == reason)
    if agent_id is not None:
        query = query.where(DeadLetter.agent_id == agent_id)
    return session.scalars(query).all()


def quarantined_with_sites(session: Session) -> list[tuple[StreamState, str | None]]:
    """Every quarantined stream, oldest first, with its agent's site (None: not enrolled)."""
    rows = session.execute(select(Agent.agent_id, Agent.site_id))
    sites: dict[str, str | None] = {agent_id: site_id for agent_id, site_id in rows}
    return [(state, sites.get(state.agent_id)) for state in quarantined_streams(session)]
