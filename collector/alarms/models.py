"""Alarms: one open alarm per identity (site, equipment, point, alarm type), and their history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class StormGroup(Base):
    """The same cause at many sites within a window: one generic incident."""

    __tablename__ = "storm_groups"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alarm_type: Mapped[str] = mapped_column(String(128), index=True)
    opened_at: Mapped[datetime]
    last_at: Mapped[datetime]
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Alarm(Base):
    """An alarm occurrence; ``state`` is active, cleared or unknown (agent unreachable)."""

    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_identity", "site_id", "equipment_id", "point", "alarm_type", "state"),
        Index("ix_alarms_state", "state"),
        # Storm grouping counts the sites with an open alarm of a type within a window.
        Index("ix_alarms_type_transition", "alarm_type", "last_transition_at"),
        Index("ix_alarms_type_raised", "alarm_type", "raised_at"),
        # Symptoms close with their cause: found by the cause's id.
        Index("ix_alarms_suppressed_by", "suppressed_by"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128))
    agent_id: Mapped[str] = mapped_column(String(64))
    equipment_id: Mapped[str] = mapped_column(String(128))
    point: Mapped[str] = mapped_column(String(128))
    alarm_type: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text, default="null")
    reason: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    cleared_at: Mapped[datetime | None] = mapped_column(nullable=True)
    test: Mapped[bool] = mapped_column(default=False)
    # Correlation state.
    flapping: Mapped[bool] = mapped_column(default=False)
    edge_active: Mapped[bool] = mapped_column(default=True)  # what the edge last said
    last_transition_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Event time of the raise that opened this occurrence (storm windows are counted on it).
    raised_at: Mapped[datetime]
    suppressed_by: Mapped[int | None] = mapped_column(ForeignKey("alarms.id"), nullable=True)
    storm_id: Mapped[int | None] = mapped_column(ForeignKey("storm_groups.id"), nullable=True)
    in_maintenance: Mapped[bool] = mapped_column(default=False)
    # Acknowledgement (acquittement): who at the NOC has taken this occurrence in hand. Columns
    # rather than a table of their own: an occurrence has at most one acknowledgement at a time,
    # every list shows it and filters on it (no join), and what came and went is the history's
    # ``acknowledged`` / ``unacknowledged`` rows. A new occurrence starts unacknowledged.
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def is_open(self) -> bool:
        """Active or unknown: not cleared."""
        return self.state != "cleared"

    @property
    def is_acknowledged(self) -> bool:
        """Someone at the NOC has acknowledged this occurrence (and not taken it back)."""
        return self.acknowledged_at is not None


class AlarmHistory(Base):
    """Every transition applied to an alarm, for the equipment pages and reports; an operator's
    acknowledgement and its withdrawal too, with who (``actor``) and why (``note``)."""

    __tablename__ = "alarm_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    at: Mapped[datetime]
    change: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text, default="null")
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set on an operator's changes only (the edge's and the collector's have neither).
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
