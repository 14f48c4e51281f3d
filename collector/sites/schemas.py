"""Site API schemas."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SiteStatus(BaseModel):
    """A site at a glance: its agent and its worst open alarm."""

    site_id: str
    kind: str
    name: str
    region: str
    agent_id: str | None
    agent_reachable: bool | None
    last_seen: datetime | None
    outbox_pending: int | None
    worst_severity: str | None
    open_alarms: int


class EquipmentRead(BaseModel):
    """An equipment with its poll health (from the agent) and open alarm count."""

    model_config = ConfigDict(from_attributes=True)

    equipment_id: str
    kind: str
    model: str
    label: str
    location: str
    source: str
    health: dict[str, Any] | None = None
    open_alarms: int = 0


class ServiceRead(BaseModel):
    """A client's service at a site."""

    model_config = ConfigDict(from_attributes=True)

    client_id: str
    site_id: str
    hosting_ref: str
    remote_ref: str


class ClientRead(BaseModel):
    """A hosted operator."""

    model_config = ConfigDict(from_attributes=True)

    client_id: str
    name: str
    notify_emails: list[str]
    notify_webhook: str | None
    sav_contract: str

    @field_validator("notify_emails", mode="before")
    @classmethod
    def _split(cls, raw: Any) -> Any:
        return [e for e in raw.split(",") if e] if isinstance(raw, str) else raw


class AgentSummary(BaseModel):
    """An agent in a list."""

    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    site_id: str
    reachable: bool
    last_seen: datetime | None
    agent_version: str
    config_hash: str
    config_error: str | None = None
    clock_skew_s: float | None
    outbox_events_pending: int
    outbox_critical: bool


class SiteDetail(BaseModel):
    """A site page: the site, its agent, its equipment and the services hosted there."""

    site_id: str
    kind: str
    name: str
    region: str
    parent_nro: str | None
    address: str
    agent: AgentSummary | None
    equipment: list[EquipmentRead]
    services: list[ServiceRead]


class SitePatch(BaseModel):
    """The fields of a site that change (omitted ones are kept)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["nro", "pm"] | None = None
    name: str | None = None
    region: str | None = None
    parent_nro: str | None = None
    address: str | None = None


class SeriesPoint(BaseModel):
    """One point of a telemetry series."""

    at: datetime
    mean: float
    minimum: float
    maximum: float
    count: int


class AgentRead(BaseModel):
    """An agent as the NOC sees it."""

    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    site_id: str
    reachable: bool
    last_seen: datetime | None
    boot: int
    agent_version: str
    config_hash: str
    config_error: str | None = None
    clock_skew_s: float | None
    outbox_events_pending: int
    outbox_telemetry_pending: int
    outbox_oldest_unacked_s: float | None
    outbox_thinned_total: int
    outbox_critical: bool
    # The storage under the outbox (last write, free space, failing writes, events kept in
    # memory or lost), from the last heartbeat; None from an agent that does not report it.
    outbox_storage: dict[str, Any] | None = Field(
        default=None, validation_alias="outbox_storage_json"
    )
    # Poll health per device from the last heartbeat (stored as JSON on the agent row).
    devices: list[dict[str, Any]] = Field(default_factory=list, validation_alias="devices_json")
    # Each trap and syslog listener: bound address, datagrams received, accepted, and rejected
    # by reason, counted since the agent started (empty: none, or an agent too old to say).
    listeners: list[dict[str, Any]] = Field(default_factory=list, validation_alias="listeners_json")

    @field_validator("devices", "outbox_storage", mode="before")
    @classmethod
    def _json(cls, raw: Any) -> Any:
        return json.loads(raw) if isinstance(raw, str) else raw

    @field_validator("listeners", mode="before")
    @classmethod
    def _listeners(cls, raw: Any) -> Any:
        if raw is None:
            return []
        return json.loads(raw) if isinstance(raw, str) else raw
