"""What ingest stores: every valid message by its unique key, per-stream progress, dead letters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class InboundEvent(Base):
    """An event (alarm/state) stored on receipt; applied later in seq order."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("agent_id", "stream_id", "seq", name="uq_inbound_event"),
        # Applied events are pruned after their retention (``collector.ingest.retention``).
        Index("ix_inbound_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    stream_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    applied: Mapped[bool] = mapped_column(default=False)


class StreamState(Base):
    """Per (agent, stream): how far events have been applied; the per-stream lock row."""

    __tablename__ = "streams"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    applied_through: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime]
    # A birth seen before the events it summarises were applied waits here.
    pending_birth: Mapped[str | None] = mapped_column(Text, nullable=True)
    clock_skew_s: Mapped[float | None] = mapped_column(nullable=True)
    # Set when applying event ``quarantine_seq`` failed: the stream's events are still stored
    # and acked, none is applied until the NOC releases the stream or skips that event.
    quarantined_at: Mapped[datetime | None] = mapped_column(nullable=True)
    quarantine_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    quarantine_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeadLetter(Base):
    """A message ingest could not accept: raw bytes and the reason, never silently dropped.

    An oversized payload keeps only its start (``payload``), with its whole ``size`` and
    ``sha256``. Dead letters are pruned by age and by total size (``collector.ingest.retention``).
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        Index("ix_dead_letters_reason", "reason"),
        Index("ix_dead_letters_received_at", "received_at"),
        Index("ix_dead_letters_agent_id", "agent_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    # The agent named by the topic, when it names one.
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class DeadLetterTotal(Base):
    """How many messages were dead-lettered for each reason, ever (the stored dead letters are
    pruned; this is the counter /metrics reports)."""

    __tablename__ = "dead_letter_totals"

    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger, default=0)


class StreamIntervention(Base):
    """What the NOC did to a quarantined stream: released it, or skipped the event it failed
    on (the event is then counted applied without effect). The log of those decisions."""

    __tablename__ = "stream_interventions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    stream_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # release | skip
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
