"""Who is calling and what they may see: roles, principals, and client scoping."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from collector.sites.models import Service


class Role(StrEnum):
    """Who is calling."""

    NOC = "noc"  # NOC operator: everything
    CLIENT = "client"  # a hosted operator: only its own services and tickets
    TECHNICIAN = "technician"  # field technician: inspections, site and agent detail
    VIEWER = "viewer"  # read-only


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; ``client_id`` is set for (and only for) clients."""

    user_id: str
    role: Role
    client_id: str | None = None

    @property
    def is_client(self) -> bool:
        """True for a client, whose every read is scoped to its own data."""
        return self.role is Role.CLIENT

    @property
    def can_write(self) -> bool:
        """NOC operators act on everything; clients act on their own tickets."""
        return self.role in (Role.NOC, Role.CLIENT, Role.TECHNICIAN)


def client_site_ids(client_id: str):  # type: ignore[no-untyped-def]
    """Subquery of the sites where a client has a service."""
    return select(Service.site_id).where(Service.client_id == client_id)


def site_scope(
    principal: Principal,
    site_column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
) -> ColumnElement[bool] | None:
    """A WHERE clause restricting rows to the client's sites (None: no restriction)."""
    if not principal.is_client:
        return None
    if principal.client_id is None:
        return false()
    return or_(site_column.in_(client_site_ids(principal.client_id)))
