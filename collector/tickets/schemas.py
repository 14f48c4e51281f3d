"""Ticket schemas: what a request carries and what a response shows (one family per resource).

Requests: ``TicketDeclaration`` (open), ``TicketTransition``, ``RestorationNotice``,
``TicketEscalate``, ``Resupervision``, ``ContractChange``, ``InterventionCreate``,
``ProgressUpdate``, ``UrgentRequest``. Responses: ``TicketRead`` (with its ``SlaRead``),
``TicketDetail``, ``TicketPage``, ``OperationRead``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.tickets.lifecycle import TicketState


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- responses ---------------------------------------------------------------------------------


class SlaRead(BaseModel):
    """The SLA clock of a ticket as of the request."""

    # The one SLA view: ``sla.sla_view`` builds it, the API, reports and dashboard show it.
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "contract_id": "sav-working-hours",
                    "calendar": "working-hours",
                    "gtr_min": 240.0,
                    "clock": "frozen",
                    "clock_reason": "waiting_client: badge d'accès du technicien ?",
                    "elapsed_min": 62.5,
                    "frozen_min": 30.0,
                    "out_of_hours_min": 0.0,
                    "planned_works_min": 0.0,
                    "deadline": None,
                    "remaining_min": 177.5,
                    "breached": False,
                    "escalations_fired": [0.25],
                    "penalty_eur": 0.0,
                    "penalty_excluded_from": None,
                    "criticality_levels": ["critical", "major", "minor"],
                }
            ]
        },
    )

    contract_id: str
    calendar: str
    gtr_min: float
    clock: str
    # Why the clock is not running (waiting for the client's answer, planned works...); None
    # while it runs.
    clock_reason: str | None = None
    elapsed_min: float
    frozen_min: float
    out_of_hours_min: float
    planned_works_min: float
    deadline: datetime | None
    remaining_min: float
    breached: bool
    escalations_fired: list[float]
    penalty_eur: float
    # Lateness after this instant is not penalised (the client refused an urgent intervention).
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


# --- opening a ticket --------------------------------------------------------------------------


class Occurrence(_Strict):
    """When and how often the client saw the problem."""

    first_time: bool
    frequency: str = Field(default="", max_length=200)
    first_seen_at: AwareDatetime


class TechnicalContact(_Strict):
    """Who the NOC calls back."""

    name: str = Field(max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    phone: str = Field(pattern=r"^\+?[0-9 .()-]{6,20}$")


class Attachment(_Strict):
    """A trace or file, base64-encoded."""

    filename: str = Field(max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=100)
    content_base64: str


class TicketDeclaration(_Strict):
    """A ticket opened by a client (individual incident, SAV) or by the NOC."""

    hosting_ref: str = Field(pattern=r"^HEB\d{5}$")
    client_ref: str | None = Field(default=None, max_length=64)
    remote_ref: str = Field(default="", max_length=64)
    description: str = Field(min_length=1, max_length=8000)
    impact: str = Field(min_length=1, max_length=2000, description="nature of the impact")
    impacted_services: list[str] = Field(default_factory=list, max_length=100)
    appeared_at: AwareDatetime
    occurrence: Occurrence
    technical_contact: TechnicalContact
    # A level of the contract's criticality profile; empty: its equivalent of "major".
    criticality: str = Field(default="", max_length=16)
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)


class UrgentRequest(_Strict):
    """What a client (or the NOC on its behalf) asks the desk for."""

    hosting_ref: str = Field(pattern=r"^HEB[0-9]{5}$")
    request_type: Literal["hot_reprovisioning", "urgent_reconnection", "urgent_access", "other"]
    description: str = Field(min_length=1, max_length=8000)
    technical_contact: TechnicalContact
    client_ref: str | None = Field(default=None, max_length=64)
    # On the desk contract's scale; default: its most urgent level (the 1-hour target).
    criticality: str | None = None


# --- working a ticket --------------------------------------------------------------------------


class TicketTransition(_Strict):
    """Body of a lifecycle action."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "to": "qualified",
                    "detail": "porte ouverte hors intervention",
                    "criticality": "major",
                },
                {"to": "waiting_client", "detail": "badge d'accès du technicien ?"},
            ]
        },
    )

    to: TicketState
    detail: str = Field(default="", max_length=4000)
    # Set when qualifying (or re-qualifying), as a level of the ticket contract's criticality
    # profile: the deadline is recomputed from the whole log.
    criticality: str | None = Field(default=None, min_length=1, max_length=16)


class RestorationNotice(_Strict):
    """The restoration notice of the operator's process."""

    link_ref: str = Field(min_length=1, max_length=128)
    corrective_operation: str = Field(min_length=1, max_length=4000)
    occurred_at: AwareDatetime
    description: str = Field(min_length=1, max_length=8000, description="nature and location")
    causes: str = Field(min_length=1, max_length=4000)
    return_to_nominal_at: AwareDatetime | None = None


class TicketEscalate(_Strict):
    """Body of a manual escalation."""

    detail: str = Field(default="", max_length=4000)


class Resupervision(_Strict):
    """The NOC confirms the return to nominal (manual re-supervision)."""

    return_to_nominal_at: AwareDatetime | None = None
    detail: str = Field(default="", max_length=4000)


class ContractChange(_Strict):
    """Put a ticket under another contract."""

    contract_id: str = Field(min_length=1, max_length=64)


class InterventionCreate(_Strict):
    """An intervention recorded on a ticket."""

    kind: Literal["onsite_dispatch", "fiber_maintainer", "remote", "third_party"]
    detail: str = Field(default="", max_length=4000)
    slot_start: AwareDatetime | None = None
    slot_end: AwareDatetime | None = None
    rollback_plan: str | None = Field(default=None, max_length=4000)
    third_party: Literal["telecom_operator", "maintenance_company"] | None = None
    third_party_ref: str | None = Field(default=None, max_length=64)
    # The API user name of the technician dispatched (a technician may only name itself).
    technician: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _required_by_kind(self) -> InterventionCreate:
        if self.kind == "onsite_dispatch" and (self.slot_start is None or self.slot_end is None):
            raise ValueError("an on-site dispatch needs its time slot (slot_start, slot_end)")
        if self.slot_start and self.slot_end and self.slot_end <= self.slot_start:
            raise ValueError("slot_end must be after slot_start")
        if self.kind == "remote" and not self.rollback_plan:
            raise ValueError("a remote intervention needs its rollback plan")
        if self.kind == "third_party" and not (self.third_party and self.third_party_ref):
            raise ValueError("a third-party ticket needs the third party and its reference")
        return self


class ProgressUpdate(_Strict):
    """A progress update or a client message."""

    message: str = Field(min_length=1, max_length=8000)
    visible_to_client: bool = True
