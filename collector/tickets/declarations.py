"""Client declarations (SAV), NOC-opened incidents, restoration notices, interventions, updates."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.access import Action, Principal, require
from collector.sites.models import Client, Service
from collector.sla import ClockState
from collector.sla.contracts import UnknownCriticality, load_contracts
from collector.tickets.lifecycle import TicketState, check_transition
from collector.tickets.models import Ticket, TicketAttachment, TicketIntervention
from collector.tickets.service import (
    ALARM_CONTRACT,
    NotAllowed,
    add_ticket,
    check_restorable,
    get_ticket,
    log_operation,
    record_opened,
)
from collector.tickets.sla import record_clock

MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class RestorationNotice(_Strict):
    """The restoration notice of the operator's process."""

    link_ref: str = Field(min_length=1, max_length=128)
    corrective_operation: str = Field(min_length=1, max_length=4000)
    occurred_at: AwareDatetime
    description: str = Field(min_length=1, max_length=8000, description="nature and location")
    causes: str = Field(min_length=1, max_length=4000)
    return_to_nominal_at: AwareDatetime | None = None


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


class DeclarationRefused(ValueError):
    """A declaration that names something the caller has no right to, or bad content."""


def _sav_contract(session: Session, client_id: str) -> str:
    client = session.get(Client, client_id)
    return client.sav_contract if client is not None else "sav-working-hours"


def service_for(session: Session, *, hosting_ref: str, principal: Principal) -> Service:
    """The service a request names; a client may only name its own."""
    service = session.scalars(select(Service).where(Service.hosting_ref == hosting_ref)).first()
    if service is None or (principal.is_client and service.client_id != principal.client_id):
        raise DeclarationRefused(f"hosting reference {hosting_ref} is not one of your services")
    return service


def declare(
    session: Session, *, declaration: TicketDeclaration, principal: Principal, now: datetime
) -> Ticket:
    """Open a ticket from a declaration; a client may only declare on its own services."""
    service = service_for(session, hosting_ref=declaration.hosting_ref, principal=principal)
    blobs = []
    for attachment in declaration.attachments:
        try:
            content = base64.b64decode(attachment.content_base64, validate=True)
        except (binascii.Error, ValueError) as err:
            raise DeclarationRefused(f"attachment {attachment.filename}: not valid base64") from err
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise DeclarationRefused(f"attachment {attachment.filename}: larger than 2 MiB")
        blobs.append((attachment, content))
    is_client = principal.is_client
    kind_word = "SAV" if is_client else "Incident"
    # Individual incidents count in working hours, under the client's SAV contract;
    # NOC-opened incidents run 24/7.
    contract_id = _sav_contract(session, service.client_id) if is_client else ALARM_CONTRACT
    book = load_contracts()
    criticality = declaration.criticality or book.profile_of(contract_id).from_default("major")
    try:
        book.check_level(contract_id, criticality)
    except UnknownCriticality as err:
        raise DeclarationRefused(f"criticality: {err}") from err
    ticket = Ticket(
        source="client" if is_client else "noc",
        kind="sav" if is_client else "incident",
        site_id=service.site_id,
        client_id=service.client_id,
        client_ref=declaration.client_ref,
        hosting_ref=declaration.hosting_ref,
        title=f"{kind_word} {declaration.hosting_ref}: {declaration.impact[:120]}",
        description=declaration.description,
        state=TicketState.OPENED.value,
        criticality=criticality,
        contract_id=contract_id,
        declaration=declaration.model_dump_json(exclude={"attachments"}),
        opened_at=now,
        updated_at=now,
    )
    add_ticket(session, ticket, now=now)
    for attachment, content in blobs:
        session.add(
            TicketAttachment(
                ticket_id=ticket.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                content=content,
            )
        )
    record_opened(
        session,
        ticket,
        actor=principal.user_id,
        detail=f"declared on {declaration.hosting_ref} ({declaration.impact[:200]})",
        now=now,
    )
    return ticket


def restore(
    session: Session, *, ref: str, notice: RestorationNotice, principal: Principal, now: datetime
) -> Ticket:
    """Send the restoration notice; an alarm ticket needs every cause alarm cleared first."""
    require(principal, Action.TICKET_RESTORE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    current = TicketState(ticket.state)
    check_transition(ref, current, TicketState.RESTORED)
    check_restorable(session, ticket)
    document = notice.model_dump(mode="json")
    if document["return_to_nominal_at"] is None and ticket.return_to_nominal_at is not None:
        document["return_to_nominal_at"] = ticket.return_to_nominal_at.isoformat()
    ticket.restoration_notice = json.dumps(document)
    ticket.state = TicketState.RESTORED.value
    ticket.restored_at = now
    log_operation(
        session,
        ticket,
        actor=principal.user_id,
        action="restored",
        now=now,
        detail=f"restoration notice: {notice.corrective_operation[:300]}",
        before=current.value,
        after=TicketState.RESTORED.value,
    )
    record_clock(
        session,
        ticket,
        state=ClockState.STOPPED,
        at=now,
        reason="restored",
        actor=principal.user_id,
    )
    return ticket


def add_intervention(
    session: Session, *, ref: str, body: InterventionCreate, principal: Principal, now: datetime
) -> TicketIntervention:
    """Record an intervention as a ticket operation (the NOC; a technician on its dispatch)."""
    require(principal, Action.INTERVENTION_ADD)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    fields = body.model_dump()
    if principal.is_technician:
        check_dispatched(session, ticket, principal)
        # A dispatch lets its technician into the site without an intrusion alarm: the NOC's
        # decision, never one a technician (or a box holding its token) takes for itself.
        if body.kind == "onsite_dispatch":
            raise NotAllowed(f"ticket {ref}: on-site dispatches are the NOC's")
        if body.technician not in (None, principal.user_id):
            raise NotAllowed(
                f"ticket {ref}: a technician records its own interventions, not {body.technician}'s"
            )
        fields["technician"] = principal.user_id
    intervention = TicketIntervention(
        ticket_id=ticket.id,
        site_id=ticket.site_id,
        created_by=principal.user_id,
        created_at=now,
        **fields,
    )
    session.add(intervention)
    session.flush()
    slot = (
        f" {body.slot_start:%Y-%m-%d %H:%M}-{body.slot_end:%H:%M} UTC"
        if body.slot_start and body.slot_end
        else ""
    )
    words = {
        "onsite_dispatch": f"on-site dispatch{slot}",
        "fiber_maintainer": "fiber maintainer called",
        "remote": "remote intervention (rollback plan recorded)",
        "third_party": f"third-party ticket {body.third_party} {body.third_party_ref}",
    }[body.kind]
    if intervention.technician:
        words += f" (technician {intervention.technician})"
    log_operation(
        session,
        ticket,
        actor=principal.user_id,
        action="intervention",
        now=now,
        detail=f"{words}: {body.detail}"[:4000],
    )
    return intervention


def progress_update(
    session: Session,
    *,
    ref: str,
    message: str,
    visible_to_client: bool,
    principal: Principal,
    now: datetime,
) -> Ticket:
    """A progress update ("point d'avancement"); the client sees it unless internal."""
    require(principal, Action.TICKET_UPDATE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if principal.is_technician:
        check_dispatched(session, ticket, principal)
    log_operation(
        session,
        ticket,
        actor=principal.user_id,
        action="client_message" if principal.is_client else "progress",
        now=now,
        detail=message,
        visible_to_client=visible_to_client or principal.is_client,
    )
    return ticket


def check_dispatched(session: Session, ticket: Ticket, principal: Principal) -> None:
    """Raise ``NotAllowed`` unless an intervention on the ticket names this technician."""
    named = session.scalar(
        select(TicketIntervention.id)
        .where(
            TicketIntervention.ticket_id == ticket.id,
            TicketIntervention.technician == principal.user_id,
        )
        .limit(1)
    )
    if named is None:
        raise NotAllowed(
            f"ticket {ticket.ref}: {principal.user_id} is not dispatched on it"
            " (no intervention names this technician)"
        )
