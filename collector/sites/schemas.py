"""Site API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


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
