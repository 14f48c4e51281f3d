"""Storing and applying one batch of received messages in one transaction.

Every valid message is stored on receipt under its unique key; events are then applied per
stream in seq order under the stream's row lock. Nothing waits in memory: a gap simply leaves
later events stored-but-unapplied until the agent re-sends the missing one.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from collector.alarms import AlarmEngine
from collector.ingest.admission import (
    Refusal,
    binding_refusal,
    record_refusals,
    topic_agent,
)
from collector.ingest.eventtime import correction, event_time, shifted
from collector.ingest.models import InboundEvent, StreamState
from collector.inventory.models import Agent, Equipment
from collector.storage.upsert import dialect_insert, insert_ignore
from collector.telemetry import service as telemetry
from protocol import (
    MAX_PAYLOAD_BYTES,
    AgentMessage,
    AlarmEvent,
    BirthMessage,
    DecodeError,
    HeartbeatMessage,
    StateEvent,
    TelemetryMessage,
    WillMessage,
    decode,
)

log = logging.getLogger(__name__)

StreamKey = tuple[str, str]
EventMessage = AlarmEvent | StateEvent
# For isinstance in the per-message loops: a tuple, not a union built again at each call.
_EVENTS = (AlarmEvent, StateEvent)
_STREAMED = (AlarmEvent, StateEvent, TelemetryMessage)
# Inclusive (first, last) ranges of telemetry seqs, as the ack carries them.
SeqRanges = list[tuple[int, int]]

# Statements of the per-stream apply, built once (building one costs more than running it).
_UNAPPLIED = (
    select(InboundEvent.seq, InboundEvent.kind, InboundEvent.payload, InboundEvent.received_at)
    .where(
        InboundEvent.agent_id == bindparam("agent_id"),
        InboundEvent.stream_id == bindparam("stream_id"),
        InboundEvent.seq > bindparam("after"),
    )
    .order_by(InboundEvent.seq)
)
_MARK_APPLIED = (
    update(InboundEvent)
    .where(
        # Not named as the columns: an UPDATE reserves those names for its SET clause.
        InboundEvent.agent_id == bindparam("b_agent_id"),
        InboundEvent.stream_id == bindparam("b_stream_id"),
        InboundEvent.seq > bindparam("after"),
        InboundEvent.seq <= bindparam("through"),
    )
    .values(applied=True)
    .execution_options(synchronize_session=False)
)
_SET_APPLIED_THROUGH = (
    update(StreamState)
    .where(
        StreamState.agent_id == bindparam("b_agent_id"),
        StreamState.stream_id == bindparam("b_stream_id"),
    )
    .values(applied_through=bindparam("through"))
)
# The batch's agents: the site each is bound to (absent: not enrolled), with how far each of
# its streams is applied; one query for admission and for the streams alike.
_AGENTS_AND_STREAMS = (
    select(Agent.agent_id, Agent.site_id, StreamState.stream_id, StreamState.applied_through)
    .outerjoin(StreamState, StreamState.agent_id == Agent.agent_id)
    .where(Agent.agent_id.in_(bindparam("agent_ids", expanding=True)))
)


class ApplyFailed(Exception):
    """Applying event ``seq`` of a stream raised (the cause is chained): that stream is to be
    quarantined on its own, the batch's other messages are not at fault."""

    def __init__(self, *, agent_id: str, stream_id: str, seq: int) -> None:
        super().__init__(f"applying event {seq} of {agent_id}/{stream_id} failed")
        self.agent_id = agent_id
        self.stream_id = stream_id
        self.seq = seq


@dataclass(frozen=True, slots=True)
class Received:
    """A raw MQTT message as it came off the wire."""

    topic: str
    payload: bytes
    received_at: datetime
    # (whole size, SHA-256) of a payload over the contract's limit, of which ``payload`` is
    # only the start (the gateway never hands over more).
    oversize: tuple[int, str] | None = None


@dataclass
class BatchResult:
    """What to acknowledge after the commit, and what to count."""

    acks: dict[StreamKey, tuple[int, SeqRanges]] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    dead_letters: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _refusal(
    item: Received,
    reason: str,
    detail: str,
    *,
    size: int | None = None,
    sha256: str | None = None,
    claimed_site: str = "",
) -> Refusal:
    return Refusal(
        topic=item.topic,
        payload=item.payload,
        received_at=item.received_at,
        reason=reason,
        detail=detail,
        agent_id=topic_agent(item.topic),
        size=size,
        sha256=sha256,
        claimed_site=claimed_site,
    )


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
    table = model.__table__
    stmt = (
        dialect_insert(session, table)
        .on_conflict_do_nothing()
        .returning(table.c.agent_id, table.c.stream_id, table.c.seq)
    )
    # Core, not the ORM's bulk path: one multi-row statement, a fraction of the Python work.
    keys = [tuple(r) for r in session.connection().execute(stmt, rows)]
    return keys if returning else len(keys)


class BatchStore:
    """Applies batches; stateless, so several collector instances can share a database."""

    def __init__(self, engine: AlarmEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AlarmEngine:
        """The alarm engine events are applied with."""
        return self._engine

    def _admit(
        self, session: Session, batch: Sequence[Received], *, now: datetime
    ) -> tuple[list[tuple[Received, AgentMessage]], Counter[str], dict[StreamKey, int]]:
        """The batch's messages this collector accepts (``collector.ingest.admission``), and
        how far their agents' known streams are applied; the others are dead-lettered here,
        each on its own."""
        refused: list[Refusal] = []
        decoded: list[tuple[Received, AgentMessage]] = []
        for item in batch:
            if item.oversize is not None:
                size, digest = item.oversize
                refused.append(
                    _refusal(
                        item,
                        "oversized",
                        f"{size} bytes > {MAX_PAYLOAD_BYTES} (the first {len(item.payload)} kept)",
                        size=size,
                        sha256=digest,
                    )
                )
                continue
            try:
                _, message = decode(item.topic, item.payload)
            except DecodeError as err:
                refused.append(_refusal(item, err.reason, err.detail))
                continue
            decoded.append((item, message))
        agents = {m.agent_id for _, m in decoded} | {r.agent_id for r in refused if r.agent_id}
        bindings, streams = _agents_and_streams(session, agents)
        admitted: list[tuple[Received, AgentMessage]] = []
        for item, message in decoded:
            refusal = binding_refusal(message, bindings.get(message.agent_id))
            if refusal is None:
                admitted.append((item, message))
            else:
                refused.append(_refusal(item, *refusal, claimed_site=message.site_id))
        counts = record_refusals(session, refused, bindings=bindings, engine=self._engine, now=now)
        return admitted, counts, streams

    def process(self, session: Session, batch: Sequence[Received], *, now: datetime) -> BatchResult:
        """Store, apply and return the acks to publish once the caller has committed."""
        result = BatchResult()
        decoded, refusals, applied = self._admit(session, batch, now=now)
        for reason, n in refusals.items():
            result.dead_letters[reason] += n
        # Every stream the batch writes to exists before anything is stored: the streams not
        # known yet are registered.
        for item, m in decoded:
            if isinstance(m, _STREAMED) and (m.agent_id, m.stream_id) not in applied:
                self._ensure_stream(session, (m.agent_id, m.stream_id), item.received_at)
                applied[(m.agent_id, m.stream_id)] = 0
        to_apply: set[StreamKey] = set()
        telemetry: dict[StreamKey, list[int]] = defaultdict(list)
        events: list[dict[str, Any]] = []
        # Re-sends of events already applied: their stored copy may be pruned (see
        # ``collector.ingest.retention``), the stream's watermark says enough.
        applied_before = 0
        batches: list[tuple[TelemetryMessage, datetime]] = []
        heartbeats: dict[str, tuple[HeartbeatMessage, datetime]] = {}
        for item, message in decoded:
            key = (message.agent_id, message.stream_id)
            if isinstance(message, _EVENTS):
                if message.seq > applied.get(key, 0):
                    events.append(_event_row(message, item))
                else:
                    applied_before += 1
                to_apply.add(key)
            elif isinstance(message, TelemetryMessage):
                batches.append((message, item.received_at))
                telemetry[key].append(message.seq)
            elif isinstance(message, BirthMessage):
                self._birth(session, message, item.received_at)
                to_apply.add(key)
            elif isinstance(message, WillMessage):
                self._will(session, message, item.received_at)
            elif isinstance(message, HeartbeatMessage):
                heartbeats[message.agent_id] = (message, item.received_at)
        self._heartbeats(session, heartbeats)
        inserted = _insert_many_ignore(session, InboundEvent, events, returning=True)
        stored = len(inserted) + self._store_telemetry(session, batches)
        result.stored = stored
        result.duplicates = len(events) + applied_before + len(batches) - stored
        fresh = _fresh_events(decoded, inserted)
        raises = [
            (m.site_id, event_time(m, received_at=item.received_at))
            for item, m in decoded
            if isinstance(m, AlarmEvent) and m.seq in fresh.get((m.agent_id, m.stream_id), {})
        ]
        with self._engine.prepared(session, raises=raises):
            for agent_id, stream_id in sorted(to_apply | telemetry.keys()):
                key = (agent_id, stream_id)
                # Telemetry alone moves no event: its ack repeats how far events are applied.
                through = (
                    self.apply_stream(
                        session,
                        agent_id=agent_id,
                        stream_id=stream_id,
                        now=now,
                        decoded=fresh.get(key),
                    )
                    if key in to_apply
                    else applied.get(key, 0)
                )
                result.acks[key] = (through, _ranges(telemetry.get(key, [])))
        return result

    def _store_telemetry(
        self, session: Session, batches: list[tuple[TelemetryMessage, datetime]]
    ) -> int:
        """Store new telemetry batches once; samples only for batches not seen before."""
        if not batches:
            return 0
        new = telemetry.claim_messages(
            session, [(m.agent_id, m.stream_id, m.seq, at) for m, at in batches]
        )
        fresh = [
            (m, correction(m, received_at=at))
            for m, at in batches
            if (m.agent_id, m.stream_id, m.seq) in new
        ]
        # Each sample on the collector's clock (``eventtime``): one addition a sample, none
        # for an NTP-synced agent (its offset is 0).
        try:
            samples = [
                (
                    m.site_id,
                    s.equipment_id,
                    s.point,
                    s.unit,
                    s.ts + delta if delta else s.ts,
                    s.value,
                )
                for m, delta in fresh
                for s in m.samples
            ]
        except OverflowError:  # a sample the correction takes out of the calendar stays put
            samples = [
                (
                    m.site_id,
                    s.equipment_id,
                    s.point,
                    s.unit,
                    shifted(s.ts, delta, fallback=s.ts),
                    s.value,
                )
                for m, delta in fresh
                for s in m.samples
            ]
        telemetry.store_samples(session, samples)
        return len(new)

    # -- streams -------------------------------------------------------------------------

    def _ensure_stream(self, session: Session, key: StreamKey, now: datetime) -> None:
        agent_id, stream_id = key
        insert_ignore(
            session,
            StreamState,
            {"agent_id": agent_id, "stream_id": stream_id, "applied_through": 0, "first_seen": now},
        )

    def apply_stream(
        self,
        session: Session,
        *,
        agent_id: str,
        stream_id: str,
        now: datetime,
        decoded: Mapping[int, EventMessage] | None = None,
    ) -> int:
        """Apply stored events of one stream in seq order; returns the applied high-water mark.

        ``decoded``: events (by seq) this transaction stored from the batch in hand, already
        validated, so they are not parsed again from their stored payload.
        """
        state = session.get(
            StreamState, (agent_id, stream_id), with_for_update=True, populate_existing=True
        )
        if state is None:
            return 0
        key = {"agent_id": agent_id, "stream_id": stream_id}
        rows = session.execute(_UNAPPLIED, {**key, "after": state.applied_through}).all()
        if state.quarantined_at is not None:
            # Nothing is applied until the NOC decides (``collector.ingest.quarantine``); what
            # is stored is acknowledged all the same, so the agent does not send it again.
            return _contiguous(state.applied_through, [seq for seq, *_ in rows])
        expected = state.applied_through + 1
        for seq, kind, payload, received_at in rows:
            if seq != expected:
                break  # a gap: wait for the agent's re-send
            try:
                # A birth's snapshot is the site as of its seq: reconciled there, before
                # anything the agent raised or cleared after it.
                self._reconcile_at(session, state, through=expected - 1, now=now)
                message = decoded.get(seq) if decoded else None
                if message is None:
                    message = _parse_event(kind, payload)
                self._apply(session, message, received_at=received_at, now=now)
            except Exception as err:
                raise ApplyFailed(agent_id=agent_id, stream_id=stream_id, seq=seq) from err
            expected += 1
        if expected - 1 > state.applied_through:
            # One statement for the whole run rather than one per event.
            params = {
                "b_agent_id": agent_id,
                "b_stream_id": stream_id,
                "after": state.applied_through,
                "through": expected - 1,
            }
            connection = session.connection()
            connection.execute(_MARK_APPLIED, params)
            connection.execute(_SET_APPLIED_THROUGH, params)
            # Written just above: the ORM is told rather than left to flush it, which it would
            # do on its own at the next query (a flush per stream and batch).
            set_committed_value(state, "applied_through", expected - 1)
        try:
            self._reconcile_at(session, state, through=state.applied_through, now=now)
        except Exception as err:
            raise ApplyFailed(
                agent_id=agent_id, stream_id=stream_id, seq=state.applied_through
            ) from err
        return state.applied_through

    def _reconcile_at(
        self, session: Session, state: StreamState, *, through: int, now: datetime
    ) -> None:
        """Reconcile the site with the stream's pending birth once applied exactly to its seq."""
        if state.pending_birth is None:
            return
        birth = BirthMessage.model_validate_json(state.pending_birth)
        if through < birth.seq:
            return  # events the snapshot already counts are still to come
        if through == birth.seq:
            self._engine.reconcile(
                session,
                site_id=birth.site_id,
                agent_id=birth.agent_id,
                snapshot=birth.alarms,
                now=now,
            )
        state.pending_birth = None

    def _apply(
        self, session: Session, message: EventMessage, *, received_at: datetime, now: datetime
    ) -> None:
        if isinstance(message, AlarmEvent):
            self._engine.apply_event(
                session,
                event=message,
                agent_id=message.agent_id,
                now=now,
                event_time=event_time(message, received_at=received_at),
            )
        else:
            state = message
            log.info("agent %s state event %s: %s", state.agent_id, state.name, state.detail)
            agent = session.get(Agent, state.agent_id)
            if agent is not None and state.name == "config_applied":
                agent.config_hash = str(state.detail.get("config_hash", agent.config_hash))
                agent.config_error = None
            elif agent is not None and state.name == "config_rejected":
                # Shown to the NOC: the agent keeps running its previous configuration.
                origin = state.detail.get("origin", "?")
                agent.config_error = f"{origin}: {state.detail.get('error', '')}"[:2000]

    # -- presence ------------------------------------------------------------------------

    def _birth(self, session: Session, birth: BirthMessage, now: datetime) -> None:
        agent = session.get(Agent, birth.agent_id)
        if agent is None:
            return  # admitted, so enrolled: unless the NOC removed it meanwhile
        if _stale(session, agent, stream_id=birth.stream_id, boot=birth.boot):
            log.info(
                "stale birth of %s (stream %s, boot %d; current stream %s, boot %d) ignored",
                birth.agent_id,
                birth.stream_id,
                birth.boot,
                agent.stream_id,
                agent.boot,
            )
            return
        agent.boot = birth.boot
        agent.stream_id = birth.stream_id
        agent.agent_version = birth.agent_version
        agent.config_hash = birth.config_hash
        agent.reachable = True
        agent.unreachable_since = None
        agent.last_seen = now
        agent.clock_skew_s = _skew(birth)
        self._engine.agent_reachable(session, site_id=birth.site_id, now=now)
        self._ensure_stream(session, (birth.agent_id, birth.stream_id), now)
        # Locked and re-read: another instance may be applying this stream's events now.
        state = session.get(
            StreamState,
            (birth.agent_id, birth.stream_id),
            with_for_update=True,
            populate_existing=True,
        )
        assert state is not None
        state.clock_skew_s = agent.clock_skew_s
        if state.applied_through > birth.seq:
            # Delivered late (another instance's queue, a redelivery): the events applied since
            # are newer than its snapshot, which would undo them.
            log.info(
                "birth of %s at seq %d arrived after seq %d was applied: snapshot not used",
                birth.agent_id,
                birth.seq,
                state.applied_through,
            )
            return
        state.pending_birth = _on_collector_time(birth).model_dump_json()

    def _will(self, session: Session, will: WillMessage, now: datetime) -> None:
        agent = session.get(Agent, will.agent_id)
        if agent is None:
            return
        if _stale(session, agent, stream_id=will.stream_id, boot=will.boot):
            log.info(
                "stale Will of %s (stream %s, boot %d) ignored",
                will.agent_id,
                will.stream_id,
                will.boot,
            )
            return
        if agent.reachable or agent.unreachable_since is None:
            agent.unreachable_since = now
        agent.reachable = False

    def _heartbeats(
        self, session: Session, latest: dict[str, tuple[HeartbeatMessage, datetime]]
    ) -> None:
        """The batch's last heartbeat of each agent, written with one UPDATE statement.

        Each agent sends one a minute: a national fleet makes hundreds a second, so neither a
        query nor an ORM object per heartbeat.
        """
        if not latest:
            return
        ids = sorted(latest)
        known: dict[str, set[str]] = {}
        for start in range(0, len(ids), 500):
            for agent_id, devices_json in session.execute(
                select(Agent.agent_id, Agent.devices_json).where(
                    Agent.agent_id.in_(ids[start : start + 500])
                )
            ):
                known[agent_id] = {d["device_id"] for d in json.loads(devices_json or "[]")}
        rows = []
        for agent_id, (hb, now) in latest.items():
            if agent_id not in known:
                continue  # admitted, so enrolled: unless the NOC removed it meanwhile
            # A device the inventory does not list yet becomes a discovered equipment.
            for device in hb.devices:
                if device.device_id not in known[agent_id]:
                    insert_ignore(
                        session,
                        Equipment,
                        {
                            "site_id": hb.site_id,
                            "equipment_id": device.device_id,
                            "source": "agent",
                        },
                    )
            row = {
                "agent_id": agent_id,
                "last_seen": now,
                "last_heartbeat": now,
                "config_hash": hb.config_hash,
                "outbox_events_pending": hb.outbox.events_pending,
                "outbox_telemetry_pending": hb.outbox.telemetry_pending,
                "outbox_oldest_unacked_s": hb.outbox.oldest_unacked_age_s,
                "outbox_thinned_total": hb.outbox.thinned_total,
                "outbox_critical": hb.outbox.critical,
                "outbox_storage_json": _storage_json(hb),
                "devices_json": json.dumps([d.model_dump(mode="json") for d in hb.devices]),
                "listeners_json": _listeners_json(hb),
                # The agent's own measure, never the heartbeat's ts against its arrival: a
                # heartbeat that waited behind a half-open link would read as skew.
                "clock_skew_s": _skew(hb),
            }
            rows.append(row)
        if rows:
            session.execute(update(Agent), rows)


_STORAGE_FIELDS = {
    "last_write",
    "free_bytes",
    "storage_error",
    "storage_errors",
    "volatile_pending",
    "volatile_lost",
}


def _listeners_json(hb: HeartbeatMessage) -> str | None:
    """The agent's trap and syslog listeners with their counts (None: it reports none)."""
    if not hb.listeners:
        return None
    return json.dumps([listener.model_dump(mode="json") for listener in hb.listeners])


def _storage_json(hb: HeartbeatMessage) -> str | None:
    """The storage under the agent's outbox, as its heartbeat reports it (None: an agent too
    old to report it)."""
    if hb.outbox.last_write is None and hb.outbox.free_bytes is None:
        return None
    return json.dumps(hb.outbox.model_dump(mode="json", include=_STORAGE_FIELDS))


def _stale(session: Session, agent: Agent, *, stream_id: str, boot: int) -> bool:
    """Is a birth or Will older than what the collector knows of ``agent``?

    Within the agent's current stream, the boot counter orders them. Across streams it cannot:
    a replaced SD card or a re-created outbox starts a new stream whose boot may restart at 1.
    There the stream the collector saw first is the older one; a stream it has never seen is
    the newest.
    """
    if agent.stream_id is None or stream_id == agent.stream_id:
        return boot < agent.boot
    seen: dict[str, datetime] = {
        sid: first
        for sid, first in session.execute(
            select(StreamState.stream_id, StreamState.first_seen).where(
                StreamState.agent_id == agent.agent_id,
                StreamState.stream_id.in_([stream_id, agent.stream_id]),
            )
        )
    }
    mine, current = seen.get(stream_id), seen.get(agent.stream_id)
    return mine is not None and current is not None and mine < current


def _agents_and_streams(
    session: Session, agent_ids: set[str]
) -> tuple[dict[str, str], dict[StreamKey, int]]:
    """Each enrolled agent's site, and how far each of their streams is applied."""
    bindings: dict[str, str] = {}
    applied: dict[StreamKey, int] = {}
    wanted = sorted(agent_ids)
    for start in range(0, len(wanted), 500):
        rows = session.execute(_AGENTS_AND_STREAMS, {"agent_ids": wanted[start : start + 500]})
        for agent_id, site_id, stream_id, through in rows:
            bindings[agent_id] = site_id
            if stream_id is not None:
                applied[(agent_id, stream_id)] = through
    return bindings, applied


def _fresh_events(
    decoded: list[tuple[Received, AgentMessage]], inserted: list[tuple[str, str, int]]
) -> dict[StreamKey, dict[int, EventMessage]]:
    """The events this batch stored (not re-sends of stored ones), by stream and seq."""
    new = set(inserted)
    fresh: dict[StreamKey, dict[int, EventMessage]] = defaultdict(dict)
    for _, message in decoded:
        if isinstance(message, _EVENTS):
            key = (message.agent_id, message.stream_id, message.seq)
            if key in new:
                # A copy twice in one batch: the first is the one stored.
                fresh[(message.agent_id, message.stream_id)].setdefault(message.seq, message)
    return fresh


def _parse_event(kind: str, payload: str) -> EventMessage:
    if kind == "alarm":
        return AlarmEvent.model_validate_json(payload)
    return StateEvent.model_validate_json(payload)


def _skew(message: BirthMessage | HeartbeatMessage) -> float | None:
    """How far the agent's clock is ahead of the collector's, as the agent measured it."""
    offset = message.clock_offset_s
    return None if offset is None else -offset


def _on_collector_time(birth: BirthMessage) -> BirthMessage:
    """The birth with its snapshot's ``since`` moved by its measured offset. Without one they
    stay: they may date from before a reboot, when the clock stood elsewhere than at the
    birth, so the birth's receive time says nothing of them."""
    if not birth.clock_offset_s or not birth.alarms:
        return birth
    delta = timedelta(seconds=birth.clock_offset_s)
    alarms = [
        a.model_copy(update={"since": shifted(a.since, delta, fallback=a.since)})
        for a in birth.alarms
    ]
    return birth.model_copy(update={"alarms": alarms})


def _contiguous(after: int, seqs: Sequence[int]) -> int:
    """The highest seq such that every one after ``after`` up to it is in ``seqs`` (sorted)."""
    through = after
    for seq in seqs:
        if seq != through + 1:
            break
        through = seq
    return through


def _ranges(seqs: list[int]) -> SeqRanges:
    ranges: SeqRanges = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges
