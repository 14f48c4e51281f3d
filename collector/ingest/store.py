"""Storing and applying one batch of received messages in one transaction.

Every valid message is stored on receipt under its unique key; events are then applied per
stream in seq order under the stream's row lock. Nothing waits in memory: a gap simply leaves
later events stored-but-unapplied until the agent re-sends the missing one.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.alarms import AlarmEngine
from collector.ingest.models import DeadLetter, InboundEvent, StreamState, TelemetryBatch
from collector.sites.models import Agent, Site
from collector.storage.upsert import insert_ignore
from collector.telemetry.models import TelemetrySample
from protocol import (
    AlarmEvent,
    BirthMessage,
    DecodeError,
    HeartbeatMessage,
    SeqRange,
    StateEvent,
    TelemetryMessage,
    WillMessage,
    decode,
)

log = logging.getLogger(__name__)

StreamKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Received:
    """A raw MQTT message as it came off the wire."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass
class BatchResult:
    """What to acknowledge after the commit, and what to count."""

    acks: dict[StreamKey, tuple[int, list[SeqRange]]] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    dead_letters: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _event_row(message: AlarmEvent | StateEvent, item: Received) -> dict[str, Any]:
    return {
        "agent_id": message.agent_id,
        "stream_id": message.stream_id,
        "seq": message.seq,
        "kind": message.kind,
        "payload": item.payload.decode(),
        "received_at": item.received_at,
        "applied": False,
    }


def _insert_many_ignore(
    session: Session, model: type[Any], rows: list[dict[str, Any]], *, returning: bool = False
) -> Any:
    """One multi-row INSERT ... ON CONFLICT DO NOTHING (duplicates are re-sends).

    Returns how many rows were inserted, or with ``returning`` the (agent, stream, seq) keys.
    """
    if not rows:
        return [] if returning else 0
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        builder(model)
        .on_conflict_do_nothing()
        .returning(model.agent_id, model.stream_id, model.seq)
    )
    keys = [tuple(r) for r in session.execute(stmt, rows)]
    return keys if returning else len(keys)


def dead_letter(session: Session, item: Received, *, reason: str, detail: str) -> None:
    """Keep a rejected message with its raw bytes and the reason."""
    session.add(
        DeadLetter(
            topic=item.topic[:1000],
            payload=item.payload,
            reason=reason,
            detail=detail[:2000],
            received_at=item.received_at,
        )
    )


class BatchStore:
    """Applies batches; stateless, so several collector instances can share a database."""

    def __init__(self, engine: AlarmEngine) -> None:
        self._engine = engine

    def process(self, session: Session, batch: Sequence[Received], *, now: datetime) -> BatchResult:
        """Store, apply and return the acks to publish once the caller has committed."""
        result = BatchResult()
        touched: set[StreamKey] = set()
        telemetry: dict[StreamKey, list[int]] = defaultdict(list)
        events: list[dict[str, Any]] = []
        batches: list[tuple[TelemetryMessage, datetime]] = []
        for item in batch:
            try:
                _, message = decode(item.topic, item.payload)
            except DecodeError as err:
                dead_letter(session, item, reason=err.reason, detail=err.detail)
                result.dead_letters[err.reason] += 1
                continue
            key = (message.agent_id, message.stream_id)
            if (
                isinstance(message, AlarmEvent | StateEvent | TelemetryMessage)
                and key not in touched
            ):
                self._ensure_stream(session, key, item.received_at, site_id=message.site_id)
            if isinstance(message, AlarmEvent | StateEvent):
                events.append(_event_row(message, item))
                touched.add(key)
            elif isinstance(message, TelemetryMessage):
                batches.append((message, item.received_at))
                telemetry[key].append(message.seq)
                touched.add(key)
            elif isinstance(message, BirthMessage):
                self._birth(session, message, item.received_at)
                touched.add(key)
            elif isinstance(message, WillMessage):
                self._will(session, message, item.received_at)
            elif isinstance(message, HeartbeatMessage):
                self._heartbeat(session, message, item.received_at)
        stored = _insert_many_ignore(session, InboundEvent, events)
        stored += self._store_telemetry(session, batches)
        result.stored = stored
        result.duplicates = len(events) + len(batches) - stored
        for agent_id, stream_id in sorted(touched):
            through = self.apply_stream(session, agent_id=agent_id, stream_id=stream_id, now=now)
            ranges = _ranges(telemetry.get((agent_id, stream_id), []))
            result.acks[(agent_id, stream_id)] = (through, ranges)
        return result

    def _store_telemetry(
        self, session: Session, batches: list[tuple[TelemetryMessage, datetime]]
    ) -> int:
        """Store new telemetry batches once; samples only for batches not seen before."""
        if not batches:
            return 0
        rows = [
            {"agent_id": m.agent_id, "stream_id": m.stream_id, "seq": m.seq, "received_at": at}
            for m, at in batches
        ]
        inserted = _insert_many_ignore(session, TelemetryBatch, rows, returning=True)
        new = set(inserted) if isinstance(inserted, list) else set()
        samples = [
            {
                "site_id": m.site_id,
                "equipment_id": s.equipment_id,
                "point": s.point,
                "ts": s.ts,
                "value": s.value,
                "unit": s.unit,
            }
            for m, _ in batches
            if (m.agent_id, m.stream_id, m.seq) in new
            for s in m.samples
        ]
        if samples:
            session.execute(insert(TelemetrySample), samples)
        return len(new)

    # -- streams -------------------------------------------------------------------------

    def _ensure_stream(
        self, session: Session, key: StreamKey, now: datetime, *, site_id: str
    ) -> None:
        agent_id, stream_id = key
        _ensure_site_agent(session, agent_id=agent_id, site_id=site_id)
        insert_ignore(
            session,
            StreamState,
            {"agent_id": agent_id, "stream_id": stream_id, "applied_through": 0, "first_seen": now},
        )

    def apply_stream(
        self, session: Session, *, agent_id: str, stream_id: str, now: datetime
    ) -> int:
        """Apply stored events of one stream in seq order; returns the applied high-water mark."""
        state = session.get(StreamState, (agent_id, stream_id), with_for_update=True)
        if state is None:
            return 0
        rows = session.scalars(
            select(InboundEvent)
            .where(
                InboundEvent.agent_id == agent_id,
                InboundEvent.stream_id == stream_id,
                InboundEvent.seq > state.applied_through,
            )
            .order_by(InboundEvent.seq)
        )
        expected = state.applied_through + 1
        for row in rows:
            if row.seq != expected:
                break  # a gap: wait for the agent's re-send
            self._apply(session, row, now=now)
            row.applied = True
            expected += 1
        state.applied_through = expected - 1
        if state.pending_birth is not None:
            birth = BirthMessage.model_validate_json(state.pending_birth)
            if state.applied_through >= birth.seq:
                self._engine.reconcile(
                    session,
                    site_id=birth.site_id,
                    agent_id=birth.agent_id,
                    snapshot=birth.alarms,
                    now=now,
                )
                state.pending_birth = None
        return state.applied_through

    def _apply(self, session: Session, row: InboundEvent, *, now: datetime) -> None:
        if row.kind == "alarm":
            event = AlarmEvent.model_validate_json(row.payload)
            self._engine.apply_event(
                session,
                event=event,
                agent_id=row.agent_id,
                now=now,
                event_time=_event_time(session, event, received_at=row.received_at),
            )
        else:
            state = StateEvent.model_validate_json(row.payload)
            log.info("agent %s state event %s: %s", row.agent_id, state.name, state.detail)
            agent = session.get(Agent, row.agent_id)
            if agent is not None and state.name == "config_applied":
                agent.config_hash = str(state.detail.get("config_hash", agent.config_hash))

    # -- presence ------------------------------------------------------------------------

    def _birth(self, session: Session, birth: BirthMessage, now: datetime) -> None:
        agent = _ensure_site_agent(session, agent_id=birth.agent_id, site_id=birth.site_id)
        if birth.boot < agent.boot:
            log.info(
                "stale birth of %s (boot %d < %d) ignored", birth.agent_id, birth.boot, agent.boot
            )
            return
        agent.boot = birth.boot
        agent.stream_id = birth.stream_id
        agent.agent_version = birth.agent_version
        agent.config_hash = birth.config_hash
        agent.reachable = True
        agent.unreachable_since = None
        agent.last_seen = now
        agent.clock_skew_s = _skew(birth.ts, now) if birth.clock_synced else None
        self._engine.agent_reachable(session, site_id=birth.site_id, now=now)
        self._ensure_stream(session, (birth.agent_id, birth.stream_id), now, site_id=birth.site_id)
        state = session.get(StreamState, (birth.agent_id, birth.stream_id))
        assert state is not None
        state.pending_birth = birth.model_dump_json()
        state.clock_skew_s = agent.clock_skew_s

    def _will(self, session: Session, will: WillMessage, now: datetime) -> None:
        agent = _ensure_site_agent(session, agent_id=will.agent_id, site_id=will.site_id)
        if will.boot < agent.boot or (
            will.boot == agent.boot and will.stream_id != agent.stream_id
        ):
            log.info("stale Will of %s (boot %d) ignored", will.agent_id, will.boot)
            return
        if agent.reachable or agent.unreachable_since is None:
            agent.unreachable_since = now
        agent.reachable = False

    def _heartbeat(self, session: Session, hb: HeartbeatMessage, now: datetime) -> None:
        agent = _ensure_site_agent(session, agent_id=hb.agent_id, site_id=hb.site_id)
        agent.last_seen = now
        agent.last_heartbeat = now
        agent.config_hash = hb.config_hash
        agent.outbox_events_pending = hb.outbox.events_pending
        agent.outbox_telemetry_pending = hb.outbox.telemetry_pending
        agent.outbox_oldest_unacked_s = hb.outbox.oldest_unacked_age_s
        agent.outbox_thinned_total = hb.outbox.thinned_total
        agent.outbox_critical = hb.outbox.critical
        agent.devices_json = json.dumps([d.model_dump(mode="json") for d in hb.devices])
        if hb.clock_synced:
            agent.clock_skew_s = _skew(hb.ts, now)


def _ensure_site_agent(session: Session, *, agent_id: str, site_id: str) -> Agent:
    # Agents and sites not yet in the inventory are registered from what they report.
    if session.get(Site, site_id) is None:
        insert_ignore(session, Site, {"site_id": site_id, "kind": _kind(site_id), "name": site_id})
    agent = session.get(Agent, agent_id)
    if agent is None:
        insert_ignore(session, Agent, {"agent_id": agent_id, "site_id": site_id})
        agent = session.get(Agent, agent_id)
        assert agent is not None
    return agent


def _event_time(session: Session, event: AlarmEvent, *, received_at: datetime) -> datetime:
    """Edge time corrected by the agent's measured skew; receive time if the clock is unsynced."""
    if not event.clock_synced:
        return received_at
    agent = session.get(Agent, event.agent_id)
    skew = agent.clock_skew_s if agent is not None and agent.clock_skew_s is not None else 0.0
    return event.ts - timedelta(seconds=skew)


def _kind(site_id: str) -> str:
    return "nro" if site_id.upper().startswith("NRO") else "pm"


def _skew(edge: datetime, received: datetime) -> float:
    return (edge - received).total_seconds()


def _ranges(seqs: list[int]) -> list[SeqRange]:
    ranges: list[SeqRange] = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1].last == seq - 1:
            ranges[-1] = SeqRange(first=ranges[-1].first, last=seq)
        else:
            ranges.append(SeqRange(first=seq, last=seq))
    return ranges
