"""Alarm API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class AlarmRead(BaseModel):
    """An alarm as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: str
    agent_id: str
    equipment_id: str
    point: str
    alarm_type: str
    state: str
    severity: str
    value: Any
    reason: str
    count: int
    first_seen: datetime
    last_seen: datetime
    cleared_at: datetime | None
    test: bool

    @field_validator("value", mode="before")
    @classmethod
    def _json_value(cls, raw: Any) -> Any:
        import json

        return json.loads(raw) if isinstance(raw, str) else raw


class AlarmPage(BaseModel):
    """A page of alarms."""

    items: list[AlarmRead]
    total: int
    offset: int
    limit: int
