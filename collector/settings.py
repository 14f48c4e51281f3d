"""Collector process settings (command line / environment), validated at the door."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from collector.datadir import SHIPPED_DATA_DIR


class CollectorSettings(BaseModel):
    """Everything one collector instance needs to start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_url: str = "sqlite:///var/shelterwatch.db"
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=1883, ge=1, le=65535)
    broker_username: str | None = None
    broker_password: str | None = None
    # The collectors' master secret for ack signatures (64 hex digits, from enrol-collector);
    # None: acks go unsigned and agents that hold a key refuse them (docs/protocol.md).
    ack_secret_file: Path | None = None
    instance_id: str = Field(default="c1", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    shared_group: str = "shelterwatch"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    # A Will opens nothing if the agent is back within this grace (broker restarts, blips).
    will_grace_s: float = Field(default=60.0, ge=0)
    # Silence after which an agent is unreachable (a few missed heartbeats).
    heartbeat_timeout_s: float = Field(default=180.0, gt=0)
    # Contracts and rules (``contracts/``, ``rules/``: see ``collector.datadir``), checked at
    # start; the shipped reference set by default.
    data_dir: Path = SHIPPED_DATA_DIR
    # Inventory files (sites, clients, services, enrolled agents) loaded at start; None: none.
    inventory_dir: Path | None = None
    # How often scheduled work (auto-close, escalations, presence) is checked at the latest.
    timer_poll_s: float = Field(default=1.0, gt=0)
