"""Ticket API schemas: one family per resource."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from collector.tickets.lifecycle import TicketState


class SlaRead(BaseModel):
    """The SLA clock of a ticket as of the request."""

    model_config = ConfigDict(from_attributes=True)

    contract_id: str
    calendar: str
    gtr_min: float
    clock: str
    elapsed_min: float
    frozen_min: float
    out_of_hours_min: float
    planned_works_min: float
    deadline: datetime | None
    remaining_min: float
    breached: bool
    escalations_fired: list[float]
    penalty_eur: float
    penalty_excluded_from: datetime | None
    criticality_levels: list[str]


class TicketRead(BaseModel):
    """A ticket as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    ref: str
    client_ref: str | None
    source: str
    kind: str
    site_id: str | None
    client_id: str | None
    title: str
    description: str
    state: TicketState
    criticality: str
    escalation_level: int
    opened_at: datetime
    updated_at: datetime
    restored_at: datetime | None
    closed_at: datetime | None
    return_to_nominal_at: datetime | None
    recurrences: int
    version: int
    contract_id: str
    resupervision: str = "automatic"
    penalty_excluded_reason: str | None = None
    hosting_ref: str | None = None
    parent_ticket_id: int | None = None
    declaration: dict[str, Any] | None = None
    restoration_notice: dict[str, Any] | None = None
    sla: SlaRead | None = None

    @field_validator("declaration", "restoration_notice", mode="before")
    @classmethod
    def _json_document(cls, raw: Any) -> Any:
        return json.loads(raw) if isinstance(raw, str) else raw


class TicketPage(BaseModel):
    """A page of tickets."""

    items: list[TicketRead]
    total: int
    offset: int
    limit: int


class OperationRead(BaseModel):
    """One entry of the operations log."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    before: str | None
    after: str | None
    detail: str


class TicketDetail(TicketRead):
    """A ticket with its operations log."""

    operations: list[OperationRead]


class TicketTransition(BaseModel):
    """Body of a lifecycle action."""

    model_config = ConfigDict(extra="forbid")

    to: TicketState
    detail: str = Field(default="", max_length=4000)
    # Set when qualifying (or re-qualifying), as a level of the ticket contract's criticality
    # profile: the deadline is recomputed from the whole log.
    criticality: str | None = Field(default=None, min_length=1, max_length=16)


class TicketEscalate(BaseModel):
    """Body of a manual escalation."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(default="", max_length=4000)


class Resupervision(BaseModel):
    """The NOC confirms the return to nominal (manual re-supervision)."""

    model_config = ConfigDict(extra="forbid")

    return_to_nominal_at: AwareDatetime | None = None
    detail: str = Field(default="", max_length=4000)


class ContractChange(BaseModel):
    """Put a ticket under another contract."""

    model_config = ConfigDict(extra="forbid")

    contract_id: str = Field(min_length=1, max_length=64)
