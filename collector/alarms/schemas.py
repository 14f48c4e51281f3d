"""Alarm API schemas."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What an operator writes on an acknowledgement or its withdrawal.
NOTE_MAX = 2000


def _stored_json(raw: Any) -> Any:
    """A value as the database keeps it (JSON text), as the API shows it."""
    return json.loads(raw) if isinstance(raw, str) else raw


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
    # Who at the NOC acknowledged this occurrence, when and why (None: not acknowledged).
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None

    _json_value = field_validator("value", mode="before")(_stored_json)


class AlarmPage(BaseModel):
    """A page of alarms."""

    items: list[AlarmRead]
    total: int
    offset: int
    limit: int


def _storable(text: str) -> str:
    # PostgreSQL text holds no NUL: refused here (422), not by the database (500).
    if "\x00" in text:
        raise ValueError("caractère NUL interdit / NUL character not allowed")
    return text


class AlarmAcknowledge(BaseModel):
    """Acknowledging an alarm: an optional note for the other operators."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=NOTE_MAX)

    @field_validator("note")
    @classmethod
    def _storable_note(cls, note: str | None) -> str | None:
        return None if note is None else _storable(note)


class AlarmUnacknowledge(BaseModel):
    """Withdrawing an acknowledgement: why, in words (required)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=NOTE_MAX)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("la raison est vide / the reason is blank")
        return _storable(reason.strip())


class AlarmHistoryRead(BaseModel):
    """One entry of an alarm's history: an edge transition, a correlation by the collector, or
    an operator's (de)acknowledgement with who (``actor``) and the note or reason (``note``)."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    change: str
    severity: str
    value: Any
    actor: str | None
    note: str | None

    _json_value = field_validator("value", mode="before")(_stored_json)


class AlarmHistoryPage(BaseModel):
    """A page of an alarm's history, oldest first."""

    items: list[AlarmHistoryRead]
    total: int
    offset: int
    limit: int
