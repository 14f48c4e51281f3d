"""What an inventory look-up or edit refuses (routes map them to 404, 409 and 422)."""

from __future__ import annotations


class InventoryNotFound(LookupError):
    """No such site, equipment, client or service."""


class InventoryConflict(ValueError):
    """The change collides with what exists (a duplicate, or live data in the way)."""


class InventoryInvalid(ValueError):
    """The change names something inconsistent (a PM's parent that is not an NRO, ...)."""
