"""Inventory routes: read and edit sites, equipment, clients, services; list agents.

Reads are scoped like every other route (a client sees its own sites, services and agents);
edits are the NOC's. Service errors are answered by ``editing.ERROR_STATUS``.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from collector.access import Action, site_scope
from collector.alarms.models import Alarm
from collector.api.deps import AppClock, CurrentPrincipal, DbSession, requires
from collector.sites import editing, escalation
from collector.sites.escalation import EscalationMatrix
from collector.sites.inventory import (
    CLIENT_ID_PATTERN,
    IDENT_PATTERN,
    ClientDetails,
    ClientEntry,
    EquipmentDetails,
    EquipmentEntry,
    ServiceEntry,
    SiteEntry,
)
from collector.sites.models import Agent, Site
from collector.sites.schemas import (
    AgentSummary,
    ClientRead,
    EquipmentRead,
    ServiceRead,
    SiteDetail,
)

sites_router = APIRouter(prefix="/api/v1/sites", tags=["inventory"])
router = APIRouter(prefix="/api/v1", tags=["inventory"])


class SitePatch(BaseModel):
    """The fields of a site that change (omitted ones are kept)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["nro", "pm"] | None = None
    name: str | None = None
    region: str | None = None
    parent_nro: str | None = None
    address: str | None = None


def visible_site(db: DbSession, principal: CurrentPrincipal, site_id: str) -> Site:
    """The site if the caller may see it; otherwise the same 404 as for an unknown site."""
    query = select(Site).where(Site.site_id == site_id)
    scope = site_scope(principal, Site.site_id)
    if scope is not None:
        query = query.where(scope)
    site = db.scalars(query).first()
    if site is None:
        raise editing.InventoryNotFound(f"site {site_id} not found")
    return site


def _equipment(db: DbSession, site_id: str) -> list[EquipmentRead]:
    agent = db.scalars(select(Agent).where(Agent.site_id == site_id)).first()
    health = {d["device_id"]: d for d in json.loads(agent.devices_json)} if agent else {}
    open_alarms = dict(
        db.execute(
            select(Alarm.equipment_id, func.count())
            .where(Alarm.site_id == site_id, Alarm.state != "cleared")
            .group_by(Alarm.equipment_id)
        ).all()
    )
    return [
        EquipmentRead.model_validate(item).model_copy(
            update={
                "health": health.get(item.equipment_id),
                "open_alarms": open_alarms.get(item.equipment_id, 0),
            }
        )
        for item in editing.list_equipment(db, site_id=site_id)
    ]


@sites_router.get(
    "/{site_id}", response_model=SiteDetail, dependencies=[requires(Action.INVENTORY_READ)]
)
def get_site(site_id: str, db: DbSession, principal: CurrentPrincipal) -> SiteDetail:
    """A site with its equipment (health, open alarms), agent and the services there."""
    site = visible_site(db, principal, site_id)
    agent = db.scalars(select(Agent).where(Agent.site_id == site_id)).first()
    services = editing.list_services(db, principal=principal, site_id=site_id)
    return SiteDetail(
        site_id=site.site_id,
        kind=site.kind,
        name=site.name,
        region=site.region,
        parent_nro=site.parent_nro,
        address=site.address,
        agent=AgentSummary.model_validate(agent) if agent else None,
        equipment=_equipment(db, site_id),
        services=[ServiceRead.model_validate(s) for s in services],
    )


@sites_router.post(
    "", response_model=SiteDetail, status_code=201, dependencies=[requires(Action.INVENTORY_EDIT)]
)
def create_site(
    body: SiteEntry, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> SiteDetail:
    """Add a site (NOC)."""
    site = editing.create_site(db, entry=body, principal=principal, now=clock.now())
    db.commit()
    return get_site(site.site_id, db, principal)


@sites_router.patch(
    "/{site_id}", response_model=SiteDetail, dependencies=[requires(Action.INVENTORY_EDIT)]
)
def update_site(
    site_id: str, body: SitePatch, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> SiteDetail:
    """Change a site's details (NOC)."""
    editing.update_site(
        db,
        site_id=site_id,
        changes=body.model_dump(exclude_unset=True),
        principal=principal,
        now=clock.now(),
    )
    db.commit()
    return get_site(site_id, db, principal)


@sites_router.delete("/{site_id}", status_code=204, dependencies=[requires(Action.INVENTORY_EDIT)])
def delete_site(
    site_id: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> Response:
    """Remove a site with nothing live left (NOC)."""
    editing.delete_site(db, site_id=site_id, principal=principal, now=clock.now())
    db.commit()
    return Response(status_code=204)


@sites_router.get(
    "/{site_id}/equipment",
    response_model=list[EquipmentRead],
    dependencies=[requires(Action.INVENTORY_READ)],
)
def list_equipment(site_id: str, db: DbSession, principal: CurrentPrincipal) -> list[EquipmentRead]:
    """A site's equipment with its poll health and open alarms."""
    visible_site(db, principal, site_id)
    return _equipment(db, site_id)


@sites_router.put(
    "/{site_id}/equipment/{equipment_id}",
    response_model=EquipmentRead,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def put_equipment(
    site_id: str,
    equipment_id: Annotated[str, PathParam(pattern=IDENT_PATTERN)],
    body: EquipmentDetails,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> EquipmentRead:
    """Declare or describe an equipment (NOC)."""
    entry = EquipmentEntry(equipment_id=equipment_id, **body.model_dump())
    item = editing.upsert_equipment(
        db, site_id=site_id, entry=entry, principal=principal, now=clock.now()
    )
    db.commit()
    return EquipmentRead.model_validate(item)


@sites_router.delete(
    "/{site_id}/equipment/{equipment_id}",
    status_code=204,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def delete_equipment(
    site_id: str, equipment_id: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> Response:
    """Remove an equipment without open alarms (NOC)."""
    editing.delete_equipment(
        db, site_id=site_id, equipment_id=equipment_id, principal=principal, now=clock.now()
    )
    db.commit()
    return Response(status_code=204)


@router.get(
    "/clients", response_model=list[ClientRead], dependencies=[requires(Action.CLIENT_READ)]
)
def list_clients(db: DbSession, principal: CurrentPrincipal) -> list[ClientRead]:
    """Clients (a client sees itself)."""
    return [ClientRead.model_validate(c) for c in editing.list_clients(db, principal=principal)]


@router.post(
    "/clients",
    response_model=ClientRead,
    status_code=201,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def create_client(
    body: ClientEntry, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> ClientRead:
    """Add a client (NOC)."""
    client = editing.save_client(db, entry=body, principal=principal, now=clock.now(), create=True)
    db.commit()
    return ClientRead.model_validate(client)


@router.put(
    "/clients/{client_id}",
    response_model=ClientRead,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def update_client(
    client_id: Annotated[str, PathParam(pattern=CLIENT_ID_PATTERN)],
    body: ClientDetails,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> ClientRead:
    """Replace a client's details: name, notification targets, SAV contract (NOC)."""
    entry = ClientEntry(client_id=client_id, **body.model_dump())
    client = editing.save_client(
        db, entry=entry, principal=principal, now=clock.now(), create=False
    )
    db.commit()
    return ClientRead.model_validate(client)


@router.get(
    "/clients/{client_id}/escalation",
    response_model=EscalationMatrix,
    dependencies=[requires(Action.CLIENT_READ)],
)
def get_escalation(
    client_id: Annotated[str, PathParam(pattern=CLIENT_ID_PATTERN)],
    db: DbSession,
    principal: CurrentPrincipal,
) -> EscalationMatrix:
    """A client's contacts and escalation matrix (a client reads its own)."""
    return escalation.read_matrix(db, client_id=client_id, principal=principal)


@router.put(
    "/clients/{client_id}/escalation",
    response_model=EscalationMatrix,
    dependencies=[requires(Action.ESCALATION_EDIT)],
)
def put_escalation(
    client_id: Annotated[str, PathParam(pattern=CLIENT_ID_PATTERN)],
    body: EscalationMatrix,
    db: DbSession,
    principal: CurrentPrincipal,
) -> EscalationMatrix:
    """Replace a client's matrix: per level, who is called or mailed and when (NOC)."""
    matrix = escalation.replace_matrix(db, client_id=client_id, matrix=body, principal=principal)
    db.commit()
    return matrix


@router.get(
    "/services", response_model=list[ServiceRead], dependencies=[requires(Action.INVENTORY_READ)]
)
def list_services(
    db: DbSession,
    principal: CurrentPrincipal,
    client_id: str | None = None,
    site_id: str | None = None,
) -> list[ServiceRead]:
    """Services (hosting and remote-connection references), by client and/or site."""
    found = editing.list_services(db, principal=principal, client_id=client_id, site_id=site_id)
    return [ServiceRead.model_validate(s) for s in found]


@router.post(
    "/services",
    response_model=ServiceRead,
    status_code=201,
    dependencies=[requires(Action.INVENTORY_EDIT)],
)
def create_service(
    body: ServiceEntry, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> ServiceRead:
    """A client's new service at a site (NOC)."""
    service = editing.create_service(db, entry=body, principal=principal, now=clock.now())
    db.commit()
    return ServiceRead.model_validate(service)


@router.delete(
    "/services/{hosting_ref}", status_code=204, dependencies=[requires(Action.INVENTORY_EDIT)]
)
def delete_service(
    hosting_ref: str, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> Response:
    """End a service (NOC); its tickets keep their references."""
    editing.delete_service(db, hosting_ref=hosting_ref, principal=principal, now=clock.now())
    db.commit()
    return Response(status_code=204)


@router.get(
    "/agents", response_model=list[AgentSummary], dependencies=[requires(Action.INVENTORY_READ)]
)
def list_agents(db: DbSession, principal: CurrentPrincipal) -> list[AgentSummary]:
    """Every agent: reachability, version, config hash, outbox depth."""
    return [AgentSummary.model_validate(a) for a in editing.list_agents(db, principal=principal)]
