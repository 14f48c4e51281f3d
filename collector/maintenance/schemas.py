"""Planned-works API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class MaintenanceCreate(BaseModel):
    """A planned-works request."""

    model_config = ConfigDict(extra="forbid")

    site_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    category: Literal["scheduled", "urgent", "third_party"]
    hours: Literal["HO", "HNO"]
    equipment_id: str | None = None
    alarm_types: list[str] = Field(default_factory=list)
    client_id: str | None = None
    client_agreement: Literal["accepted", "refused"] | None = None
    description: str = Field(default="", max_length=4000)


class MaintenanceRead(BaseModel):
    """A window as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: str
    equipment_id: str | None
    alarm_types: str
    starts_at: datetime
    ends_at: datetime
    category: str
    hours: str
    client_id: str | None
    client_agreement: str | None
    quote_required: bool
    description: str
    created_by: str
    created_at: datetime
