"""Tickets, the alarms that caused them, and their operations log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base
from collector.tickets.lifecycle import INITIAL_STATE

_ID = BigInteger().with_variant(Integer, "sqlite")


class Ticket(Base):
    """A NOC ticket; ``ref`` is ours (TKT-YYYY-NNNNNN), ``client_ref`` the client's."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_state", "state"),
        Index("ix_tickets_site", "site_id"),
        Index("ix_tickets_identity", "alarm_identity", "state"),
        Index("ix_tickets_next_timer", "next_timer_at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ref: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    client_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # alarm | client | noc
    kind: Mapped[str] = mapped_column(String(32))  # curative | sav | incident | generic_incident
    site_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # site/equipment/point/alarm_type of the alarm that opened it: recurrences find it directly.
    alarm_identity: Mapped[str | None] = mapped_column(String(520), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    # Starts in the lifecycle's initial state; only ``transitions.move`` changes it.
    state: Mapped[str] = mapped_column(String(24), default=INITIAL_STATE.value)
    criticality: Mapped[str] = mapped_column(String(16))
    escalation_level: Mapped[int] = mapped_column(Integer, default=1)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    restored_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    return_to_nominal_at: Mapped[datetime | None] = mapped_column(nullable=True)
    recurrences: Mapped[int] = mapped_column(Integer, default=0)
    previous_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    parent_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    contract_id: Mapped[str] = mapped_column(String(64), default="curative-24x7")
    # What a client declared (seed section 5), and the restoration notice, as JSON documents.
    declaration: Mapped[str | None] = mapped_column(Text, nullable=True)
    restoration_notice: Mapped[str | None] = mapped_column(Text, nullable=True)
    hosting_ref: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The exact instant of the next SLA timer (escalation threshold); None while paused.
    next_timer_at: Mapped[datetime | None] = mapped_column(nullable=True)
    sla_breached: Mapped[bool] = mapped_column(default=False)
    # The client refused an urgent intervention: lateness after this instant is not penalised.
    penalty_excluded_from: Mapped[datetime | None] = mapped_column(nullable=True)
    penalty_excluded_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Bumped on every change: the ETag that makes concurrent updates visible.
    version: Mapped[int] = mapped_column(Integer, default=1)


class TicketAlarm(Base):
    """An alarm that caused (or recurred on) a ticket."""

    __tablename__ = "ticket_alarms"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), primary_key=True, index=True)


class TicketOperation(Base):
    """One entry of a ticket's operations log: who, when, what, before/after."""

    __tablename__ = "ticket_operations"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    before: Mapped[str | None] = mapped_column(String(64), nullable=True)
    after: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    visible_to_client: Mapped[bool] = mapped_column(default=True)


class TicketClockEvent(Base):
    """The append-only SLA clock log of a ticket: running, frozen, planned works, stopped."""

    __tablename__ = "ticket_clock_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="system")


class TicketEscalation(Base):
    """An SLA threshold that fired; its primary key makes it fire once, whatever instance runs."""

    __tablename__ = "ticket_escalations"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    fraction: Mapped[float] = mapped_column(primary_key=True)
    fired_at: Mapped[datetime]


class TicketIntervention(Base):
    """An intervention on a ticket: on-site dispatch, fiber maintainer, remote, third party."""

    __tablename__ = "ticket_interventions"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    site_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")
    # An on-site dispatch authorises access to the site during its slot (no intrusion alarm).
    slot_start: Mapped[datetime | None] = mapped_column(nullable=True)
    slot_end: Mapped[datetime | None] = mapped_column(nullable=True)
    rollback_plan: Mapped[str | None] = mapped_column(Text, nullable=True)
    third_party: Mapped[str | None] = mapped_column(String(64), nullable=True)
    third_party_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The API user name of the technician dispatched: the one technician who may act on the
    # ticket's interventions and post its progress from the field.
    technician: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class TicketAttachment(Base):
    """A trace or file attached to a declaration (kept in the database, size-limited)."""

    __tablename__ = "ticket_attachments"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
