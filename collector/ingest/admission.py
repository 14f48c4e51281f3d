"""Admission: what an agent may send, and what becomes of what it may not.

A shelter box is untrusted (its SD card holds its broker password). Its identity is the topic
it publishes on, which the broker ties to its credentials; the inventory binds that agent to
one site (``agents`` in the inventory files, written by ``enrol-agent``). So a message is
admitted only when:

- its agent is enrolled (an unknown agent id is held as an *unenrolled agent*, shown to the
  NOC, and bound to nothing: it cannot attach a real site to itself);
- it speaks for the agent's own site (its alarms, births, telemetry, heartbeats);
- it does not name an alarm only the collector raises (``agent_unreachable`` and the like:
  an agent cannot clear the alarm that says it misbehaves).

Anything refused is dead-lettered with its reason, one message at a time, and an enrolled agent
that sent it gets one ``agent_misbehaving`` alarm on its own site, counted rather than repeated.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from collector.alarms import AlarmEngine
from collector.alarms.engine import AGENT_EQUIPMENT, COLLECTOR_ALARM_TYPES, MISBEHAVING_TYPE
from collector.ingest.models import DeadLetter, DeadLetterTotal
from collector.inventory.models import UnenrolledAgent
from collector.storage.upsert import dialect_insert
from protocol import MAX_PAYLOAD_BYTES, AgentMessage, AlarmEvent, BirthMessage, parse_topic

# What is kept of a payload over the size limit (with its size and SHA-256).
OVERSIZE_KEEP_BYTES = 4_096
# Where the collector's own observations of an agent's conduct are raised.
CONDUCT_POINT = "ingest"
# How much of a dead letter's reason (detail) is kept.
_DETAIL_CHARS = 2_000
# Every reason a message is dead-lettered for (the table of docs/protocol.md): /metrics shows
# each one, at 0 until it happens, so that an alert on its rate has a series from the start.
DEAD_LETTER_REASONS = (
    "bad_topic",
    "oversized",
    "not_json",
    "not_object",
    "too_deep",
    "unknown_version",
    "wrong_channel",
    "invalid",
    "identity_mismatch",
    "unenrolled_agent",
    "foreign_site",
    "reserved_identity",
    "db_error",
    "internal_error",
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message not admitted: why, and which agent its topic names (None: none)."""

    topic: str
    payload: bytes
    received_at: datetime
    reason: str
    detail: str
    agent_id: str | None
    # Its whole size and SHA-256 when only its start came across (oversized).
    size: int | None = None
    sha256: str | None = None
    # The site an unenrolled agent claims, shown to the NOC.
    claimed_site: str = ""


def topic_agent(topic: str) -> str | None:
    """The agent a topic names, or None for a topic that is not an agent's."""
    try:
        return parse_topic(topic).agent_id
    except ValueError:
        return None


def binding_refusal(message: AgentMessage, bound_site: str | None) -> tuple[str, str] | None:
    """(reason, detail) when the agent may not send ``message``; None when it may."""
    if bound_site is None:
        return (
            "unenrolled_agent",
            f"agent {message.agent_id} is not enrolled (it claims site {message.site_id}): "
            "enrol it (`shelterwatch collector enrol-agent`) to bind it to its site",
        )
    if message.site_id != bound_site:
        return (
            "foreign_site",
            f"agent {message.agent_id} is bound to site {bound_site}, "
            f"not {message.site_id}: it may only speak for its own site",
        )
    if isinstance(message, AlarmEvent) and _reserved(message.equipment_id, message.alarm_type):
        return "reserved_identity", _reserved_detail(message.alarm_type)
    if isinstance(message, BirthMessage):
        for snap in message.alarms:
            if _reserved(snap.equipment_id, snap.alarm_type):
                return "reserved_identity", _reserved_detail(snap.alarm_type)
    return None


def record_refusals(
    session: Session,
    refusals: Sequence[Refusal],
    *,
    bindings: dict[str, str],
    engine: AlarmEngine,
    now: datetime,
) -> Counter[str]:
    """Dead-letter every refusal, hold unenrolled agents, raise the misbehaving alarms;
    returns the count by reason."""
    by_reason: Counter[str] = Counter(r.reason for r in refusals)
    if not refusals:
        return by_reason
    session.execute(insert(DeadLetter), [_dead_letter_row(r) for r in refusals])
    _count_totals(session, by_reason)
    _hold_unenrolled(session, [r for r in refusals if r.reason == "unenrolled_agent"], now=now)
    conduct: dict[str, list[Refusal]] = defaultdict(list)
    for refusal in refusals:
        if refusal.agent_id is not None and refusal.agent_id in bindings:
            conduct[refusal.agent_id].append(refusal)
    for agent_id, theirs in sorted(conduct.items()):
        last = theirs[-1]
        engine.raise_collector_alarm(
            session,
            site_id=bindings[agent_id],
            agent_id=agent_id,
            point=CONDUCT_POINT,
            alarm_type=MISBEHAVING_TYPE,
            reason=f"message refused ({last.reason}): {last.detail}"[:500],
            now=now,
            count=len(theirs),
        )
    return by_reason


def dead_letter(
    session: Session,
    *,
    topic: str,
    payload: bytes,
    received_at: datetime,
    reason: str,
    detail: str,
) -> None:
    """Keep one message the collector could not store (a database error), counted."""
    refusal = Refusal(topic, payload, received_at, reason, detail, topic_agent(topic))
    session.execute(insert(DeadLetter), [_dead_letter_row(refusal)])
    _count_totals(session, Counter({reason: 1}))


def _reserved(equipment_id: str, alarm_type: str) -> bool:
    return equipment_id == AGENT_EQUIPMENT and alarm_type in COLLECTOR_ALARM_TYPES


def _reserved_detail(alarm_type: str) -> str:
    return f"alarm type {alarm_type} on equipment {AGENT_EQUIPMENT} is raised by the collector only"


def _dead_letter_row(refusal: Refusal) -> dict[str, Any]:
    payload = refusal.payload
    # An oversized payload keeps its start only (the gateway hands over no more than that).
    kept = payload if len(payload) <= MAX_PAYLOAD_BYTES else payload[:OVERSIZE_KEEP_BYTES]
    return {
        "topic": refusal.topic[:1000],
        "agent_id": refusal.agent_id,
        "payload": kept,
        "size": refusal.size if refusal.size is not None else len(payload),
        "sha256": refusal.sha256 or hashlib.sha256(payload).hexdigest(),
        "reason": refusal.reason,
        "detail": refusal.detail[:_DETAIL_CHARS],
        "received_at": refusal.received_at,
    }


def _count_totals(session: Session, by_reason: Counter[str]) -> None:
    table = DeadLetterTotal.__table__
    for reason, n in sorted(by_reason.items()):
        stmt = dialect_insert(session, table).values(reason=reason, total=n)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.reason], set_={"total": table.c.total + n}
            )
        )


def _hold_unenrolled(session: Session, refusals: Sequence[Refusal], *, now: datetime) -> None:
    """One row per unknown agent id, with how often and as which site it was heard."""
    counts = Counter(r.agent_id for r in refusals if r.agent_id is not None)
    claimed = {r.agent_id: r.claimed_site for r in refusals}
    table = UnenrolledAgent.__table__
    for agent_id, n in sorted(counts.items()):
        stmt = dialect_insert(session, table).values(
            agent_id=agent_id,
            claimed_site_id=claimed[agent_id][:128],
            first_seen=now,
            last_seen=now,
            messages=n,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.agent_id],
                set_={
                    "messages": table.c.messages + n,
                    "last_seen": now,
                    "claimed_site_id": stmt.excluded.claimed_site_id,
                },
            )
        )
