"""Tickets people open: a client's individual incident (SAV), or an incident the NOC opens."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.identity.access import Principal
from collector.inventory.models import Client, Service
from collector.sla.contracts import UnknownCriticality, load_contracts
from collector.tickets.errors import DeclarationRefused
from collector.tickets.models import Ticket, TicketAttachment
from collector.tickets.opening import ALARM_CONTRACT, open_ticket
from collector.tickets.schemas import Attachment, TicketDeclaration

MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024


def _sav_contract(session: Session, client_id: str) -> str:
    client = session.get(Client, client_id)
    return client.sav_contract if client is not None else "sav-working-hours"


def service_for(session: Session, *, hosting_ref: str, principal: Principal) -> Service:
    """The service a request names; a client may only name its own."""
    service = session.scalars(select(Service).where(Service.hosting_ref == hosting_ref)).first()
    if service is None or (principal.is_client and service.client_id != principal.client_id):
        raise DeclarationRefused(f"hosting reference {hosting_ref} is not one of your services")
    return service


def _decoded(attachments: list[Attachment]) -> list[tuple[Attachment, bytes]]:
    blobs = []
    for attachment in attachments:
        try:
            content = base64.b64decode(attachment.content_base64, validate=True)
        except (binascii.Error, ValueError) as err:
            raise DeclarationRefused(f"attachment {attachment.filename}: not valid base64") from err
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise DeclarationRefused(f"attachment {attachment.filename}: larger than 2 MiB")
        blobs.append((attachment, content))
    return blobs


def declare(
    session: Session, *, declaration: TicketDeclaration, principal: Principal, now: datetime
) -> Ticket:
    """Open a ticket from a declaration; a client may only declare on its own services."""
    service = service_for(session, hosting_ref=declaration.hosting_ref, principal=principal)
    blobs = _decoded(declaration.attachments)
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
        criticality=criticality,
        contract_id=contract_id,
        declaration=declaration.model_dump_json(exclude={"attachments"}),
        opened_at=now,
        updated_at=now,
    )
    open_ticket(
        session,
        ticket=ticket,
        actor=principal.user_id,
        detail=f"declared on {declaration.hosting_ref} ({declaration.impact[:200]})",
        now=now,
    )
    for attachment, content in blobs:
        session.add(
            TicketAttachment(
                ticket_id=ticket.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                content=content,
            )
        )
    return ticket
