"""Each client's contacts and escalation matrix (the operator's "contacts et escalade" annex):
per escalation level, who is called or mailed, and during which hours. Data, editable by the
NOC through the API; a client reads its own."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from collector.identity.access import Action, Principal, require
from collector.inventory.errors import InventoryNotFound
from collector.inventory.models import Client, EscalationContact

MAX_LEVEL = 3


class ContactEntry(BaseModel):
    """One person (or desk) of the matrix."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    level: int = Field(ge=1, le=MAX_LEVEL)
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 .()-]{6,20}$")
    hours: Literal["24x7", "working_hours", "urgent_desk"] = "24x7"

    @model_validator(mode="after")
    def _reachable(self) -> ContactEntry:
        if self.email is None and self.phone is None:
            raise ValueError(f"{self.name}: give an email or a phone number")
        return self


class EscalationMatrix(BaseModel):
    """A client's whole matrix (replaced as a whole: it is one document to the operator)."""

    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactEntry] = Field(default_factory=list, max_length=100)


def read_matrix(session: Session, *, client_id: str, principal: Principal) -> EscalationMatrix:
    """The matrix of a client, by level; a client reads only its own."""
    _visible_client(session, client_id=client_id, principal=principal)
    rows = session.scalars(
        select(EscalationContact)
        .where(EscalationContact.client_id == client_id)
        .order_by(EscalationContact.level, EscalationContact.id)
    )
    return EscalationMatrix(contacts=[ContactEntry.model_validate(r) for r in rows])


def replace_matrix(
    session: Session, *, client_id: str, matrix: EscalationMatrix, principal: Principal
) -> EscalationMatrix:
    """Replace a client's matrix (NOC only)."""
    require(principal, Action.ESCALATION_EDIT)
    _visible_client(session, client_id=client_id, principal=principal)
    session.execute(delete(EscalationContact).where(EscalationContact.client_id == client_id))
    for entry in matrix.contacts:
        session.add(EscalationContact(client_id=client_id, **entry.model_dump()))
    session.flush()
    return read_matrix(session, client_id=client_id, principal=principal)


def _visible_client(session: Session, *, client_id: str, principal: Principal) -> Client:
    client = session.get(Client, client_id)
    if client is None or (principal.is_client and principal.client_id != client_id):
        raise InventoryNotFound(f"client {client_id} not found")
    return client
