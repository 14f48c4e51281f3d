"""Inventory: sites (NRO/PM), agents, clients and the services each client has at a site."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class Site(Base):
    """A technical site: an NRO or a shelter PM."""

    __tablename__ = "sites"

    site_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), default="pm")  # nro | pm
    name: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(100), default="unknown")
    parent_nro: Mapped[str | None] = mapped_column(String(128), nullable=True)
    address: Mapped[str] = mapped_column(Text, default="")


class Equipment(Base):
    """An equipment of a site: declared in the inventory or through the API, or discovered
    from the devices an agent reports (``source`` says which)."""

    __tablename__ = "equipment"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), primary_key=True)
    equipment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="")  # ups, rectifier, hvac, contacts
    model: Mapped[str] = mapped_column(String(128), default="")
    label: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16), default="inventory")  # inventory|api|agent


class Agent(Base):
    """The agent box of a site, as last reported by its birth and heartbeats."""

    __tablename__ = "agents"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    stream_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    boot: Mapped[int] = mapped_column(Integer, default=0)
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    config_hash: Mapped[str] = mapped_column(String(128), default="")
    # The last configuration the agent refused (origin: reason), until one is applied.
    config_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    reachable: Mapped[bool] = mapped_column(default=False)
    # Set by a Last Will; the unreachable alarm waits a grace period so a broker restart or a
    # link blip followed by a quick reconnect opens nothing.
    unreachable_since: Mapped[datetime | None] = mapped_column(nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)
    last_heartbeat: Mapped[datetime | None] = mapped_column(nullable=True)
    clock_skew_s: Mapped[float | None] = mapped_column(nullable=True)
    outbox_events_pending: Mapped[int] = mapped_column(Integer, default=0)
    outbox_telemetry_pending: Mapped[int] = mapped_column(Integer, default=0)
    outbox_oldest_unacked_s: Mapped[float | None] = mapped_column(nullable=True)
    outbox_thinned_total: Mapped[int] = mapped_column(Integer, default=0)
    outbox_critical: Mapped[bool] = mapped_column(default=False)
    # The storage under the outbox, from the last heartbeat that reported it (JSON: last_write,
    # free_bytes, storage_error, storage_errors, volatile_pending, volatile_lost).
    outbox_storage_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Each trap and syslog listener (bound address; received, accepted, rejected by reason since
    # the agent started), from the last heartbeat; None from an agent that reports none.
    listeners_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    devices_json: Mapped[str] = mapped_column(Text, default="[]")


class UnenrolledAgent(Base):
    """An agent id the inventory does not know, heard on the broker: held, shown to the NOC,
    bound to no site (ingest dead-letters its messages as ``unenrolled_agent``)."""

    __tablename__ = "unenrolled_agents"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    claimed_site_id: Mapped[str] = mapped_column(String(128), default="")
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    messages: Mapped[int] = mapped_column(BigInteger, default=0)


class Client(Base):
    """An operator hosted at sites (sees only its own services and tickets)."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Where ticket notifications go (comma-separated e-mails; one webhook URL).
    notify_emails: Mapped[str] = mapped_column(Text, default="")
    notify_webhook: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The contract the client's own declarations (SAV) count under.
    sav_contract: Mapped[str] = mapped_column(String(64), default="sav-working-hours")


class EscalationContact(Base):
    """One line of a client's contacts and escalation matrix: who is called or mailed at an
    escalation level, and during which hours."""

    __tablename__ = "escalation_contacts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A calendar of the SLA module: 24x7, working_hours or urgent_desk.
    hours: Mapped[str] = mapped_column(String(32), default="24x7")


class Service(Base):
    """A client's service at a site (hosting reference HEBxxxxx, remote connection reference)."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("hosting_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"), index=True)
    hosting_ref: Mapped[str] = mapped_column(String(32))
    remote_ref: Mapped[str] = mapped_column(String(64), default="")
