"""What a client may see: the sites where it has a service, and the rows of those sites.

NOC, supervisors and technicians see every site; a client only its own (and a client principal
without a client id sees nothing)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from collector.identity.access import Principal
from collector.inventory.errors import InventoryNotFound
from collector.inventory.models import Service, Site


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


def visible_site(session: Session, *, principal: Principal, site_id: str) -> Site:
    """The site if the caller may see it; otherwise the same not-found as an unknown site."""
    query = select(Site).where(Site.site_id == site_id)
    scope = site_scope(principal, Site.site_id)
    if scope is not None:
        query = query.where(scope)
    site = session.scalars(query).first()
    if site is None:
        raise InventoryNotFound(f"site {site_id} not found")
    return site
