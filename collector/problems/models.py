"""Problems and the tickets linked to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class Problem(Base):
    """A recurring fault at one site, equipment and alarm type."""

    __tablename__ = "problems"
    __table_args__ = (
        Index("ix_problems_identity", "site_id", "equipment_id", "alarm_type", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(32), default="")
    site_id: Mapped[str] = mapped_column(String(128))
    equipment_id: Mapped[str] = mapped_column(String(128))
    alarm_type: Mapped[str] = mapped_column(String(64))
    # proposed -> confirmed -> closed, or proposed -> rejected
    state: Mapped[str] = mapped_column(String(16))
    proposed_at: Mapped[datetime]
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")  # why proposed, or why rejected
    root_cause: Mapped[str] = mapped_column(Text, default="")
    permanent_fix: Mapped[str] = mapped_column(Text, default="")


class ProblemTicket(Base):
    """A ticket (an incident) that is an occurrence of a problem."""

    __tablename__ = "problem_tickets"
    __table_args__ = (UniqueConstraint("problem_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    linked_at: Mapped[datetime]
    linked_by: Mapped[str] = mapped_column(String(128))
