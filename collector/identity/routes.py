"""Who the caller is: the dashboard adapts its pages to the role."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Me(BaseModel):
    """The authenticated caller."""

    user_id: str
    role: str
    client_id: str | None


@router.get("/me", response_model=Me, dependencies=[requires(Action.ME_READ)])
def me(principal: CurrentPrincipal) -> Me:
    """The caller's name, role and (for a client) client id."""
    return Me(user_id=principal.user_id, role=principal.role.value, client_id=principal.client_id)
