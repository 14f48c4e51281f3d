"""Quarantined streams: one agent's event that cannot be applied stops that agent only.

When applying an event raises (a case the engine mishandles, a value the database refuses),
retrying can only fail again, and a stream is applied in order: its later events would wait
behind it for ever, and the batches carrying them would keep failing. So the stream is
quarantined instead. Its events are still stored and acknowledged (the agent does not send
them again, nothing is lost), none is applied, and a ``stream_quarantined`` alarm on the
agent's site tells the NOC. The NOC then either releases the stream (after a fix, everything
waiting is applied again in order) or skips the failing event (counted applied without effect);
both are logged with who, when and why. Every other stream goes on meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collector.alarms import AlarmEngine
from collector.alarms.engine import QUARANTINED_TYPE
from collector.ingest.admission import CONDUCT_POINT
from collector.ingest.models import InboundEvent, StreamIntervention, StreamState
from collector.inventory.models import Agent
from collector.storage.upsert import insert_ignore

log = logging.getLogger(__name__)


class StreamNotFound(LookupError):
    """No such stream of that agent."""


class NotQuarantined(ValueError):
    """The stream is not quarantined (or not at the event named)."""


def quarantine_stream(
    session: Session,
    *,
    engine: AlarmEngine,
    agent_id: str,
    stream_id: str,
    seq: int,
    error: str,
    now: datetime,
) -> None:
    """Stop applying a stream at event ``seq`` and raise the alarm on the agent's site."""
    # The stream may be new: its first batch, which registered it, was rolled back.
    insert_ignore(
        session,
        StreamState,
        {"agent_id": agent_id, "stream_id": stream_id, "applied_through": 0, "first_seen": now},
    )
    state = session.get(
        StreamState, (agent_id, stream_id), with_for_update=True, populate_existing=True
    )
    assert state is not None
    state.quarantined_at = now
    state.quarantine_seq = seq
    state.quarantine_reason = error[:2000]
    agent = session.get(Agent, agent_id)
    if agent is not None:
        engine.raise_collector_alarm(
            session,
            site_id=agent.site_id,
            agent_id=agent_id,
            point=CONDUCT_POINT,
            alarm_type=QUARANTINED_TYPE,
            reason=f"event {seq} of stream {stream_id} cannot be applied: {error}"[:500],
            now=now,
        )


def quarantined_streams(session: Session) -> list[StreamState]:
    """Every quarantined stream, oldest first."""
    return list(
        session.scalars(
            select(StreamState)
            .where(StreamState.quarantined_at.is_not(None))
            .order_by(StreamState.quarantined_at)
        )
    )


def release_stream(
    session: Session,
    *,
    engine: AlarmEngine,
    agent_id: str,
    stream_id: str,
    actor: str,
    reason: str,
    now: datetime,
    skip: bool = False,
) -> StreamState:
    """Let a quarantined stream be applied again, from the failing event or (``skip``) after
    it. The caller applies it (``BatchStore.apply_stream``) in the same transaction: if it
    fails again, the whole decision rolls back and the stream stays quarantined."""
    state = session.get(
        StreamState, (agent_id, stream_id), with_for_update=True, populate_existing=True
    )
    if state is None:
        raise StreamNotFound(f"no stream {stream_id} of agent {agent_id}")
    if state.quarantined_at is None or state.quarantine_seq is None:
        raise NotQuarantined(f"stream {stream_id} of agent {agent_id} is not quarantined")
    seq = state.quarantine_seq
    if skip:
        if seq != state.applied_through + 1:
            # The failure came from a birth's snapshot at the applied mark, not an event.
            raise NotQuarantined(
                f"stream {stream_id} of agent {agent_id} failed on the birth snapshot at "
                f"event {seq}, not on an event that can be skipped: release it instead"
            )
        session.execute(
            update(InboundEvent)
            .where(
                InboundEvent.agent_id == agent_id,
                InboundEvent.stream_id == stream_id,
                InboundEvent.seq == seq,
            )
            .values(applied=True)
        )
        state.applied_through = seq
    session.add(
        StreamIntervention(
            agent_id=agent_id,
            stream_id=stream_id,
            action="skip" if skip else "release",
            seq=seq,
            actor=actor,
            reason=reason,
            at=now,
        )
    )
    log.warning(
        "stream %s/%s %s at event %d by %s: %s",
        agent_id,
        stream_id,
        "skipped" if skip else "released",
        seq,
        actor,
        reason,
    )
    state.quarantined_at = None
    state.quarantine_seq = None
    state.quarantine_reason = None
    session.flush()
    agent = session.get(Agent, agent_id)
    still = session.scalar(
        select(StreamState.stream_id).where(
            StreamState.agent_id == agent_id, StreamState.quarantined_at.is_not(None)
        )
    )
    if agent is not None and still is None:
        engine.clear_collector_alarm(
            session,
            site_id=agent.site_id,
            point=CONDUCT_POINT,
            alarm_type=QUARANTINED_TYPE,
            now=now,
        )
    return state
