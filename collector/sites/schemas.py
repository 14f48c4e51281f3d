"""Site API schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
