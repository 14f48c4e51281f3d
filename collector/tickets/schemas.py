"""Ticket API schemas: one family per resource."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from collector.tickets.lifecycle import TicketState


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
