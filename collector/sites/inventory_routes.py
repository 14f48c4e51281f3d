"""Inventory routes beside the sites: clients and their escalation matrices, services, agents.

Reads are scoped like every other route (a client sees its own services and agents); edits are
the NOC's. The sites' own routes (``/api/v1/sites...``) are in ``collector.sites.routes``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from fastapi import Path as PathParam

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.inventory.files import (
    CLIENT_ID_PATTERN,
    ClientDetails,
    ClientEntry,
    ServiceEntry,
)
from collector.sites import editing, escalation
from collector.sites.escalation import EscalationMatrix
from collector.sites.schemas import (
    AgentSummary,
    ClientRead,
    ServiceRead,
)

router = APIRouter(prefix="/api/v1", tags=["inventory"])


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
