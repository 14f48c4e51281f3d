"""Site routes."""

from __future__ import annotations

from fastapi import APIRouter

from collector.api.deps import CurrentPrincipal, DbSession
from collector.sites import service
from collector.sites.schemas import SiteStatus

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.get("", response_model=list[SiteStatus])
def list_sites(db: DbSession, principal: CurrentPrincipal) -> list[SiteStatus]:
    """Every site the caller may see, with its status at a glance."""
    return service.site_statuses(db, principal=principal)
