"""Inventory look-ups every feature may need, with the inventory's own not-found error."""

from __future__ import annotations

from sqlalchemy.orm import Session

from collector.inventory.errors import InventoryNotFound
from collector.inventory.models import Site


def get_site(session: Session, site_id: str) -> Site:
    """A site by id, or ``InventoryNotFound``."""
    site = session.get(Site, site_id)
    if site is None:
        raise InventoryNotFound(f"site {site_id} not found")
    return site
