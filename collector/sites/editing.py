"""Editing the inventory through the API: sites, equipment, clients and their services.

The same validated entries as the inventory files; every change is published on the change
feed with who made it. Deleting what still has live data (open alarms or tickets, agents,
services) is refused with what is in the way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.feed import service as feed
from collector.identity.access import Action, Principal, require
from collector.inventory.errors import InventoryConflict, InventoryInvalid, InventoryNotFound
from collector.inventory.files import ClientEntry, EquipmentEntry, ServiceEntry, SiteEntry
from collector.inventory.lookups import get_site
from collector.inventory.models import Agent, Client, Equipment, Service, Site
from collector.tickets.lifecycle import OPEN_STATES
from collector.tickets.models import Ticket


def _noc_only(principal: Principal) -> None:
    require(principal, Action.INVENTORY_EDIT)


def _audit(
    session: Session,
    *,
    principal: Principal,
    action: str,
    entity: str,
    key: str,
    now: datetime,
    site_id: str | None = None,
    client_id: str | None = None,
) -> None:
    feed.publish(
        session,
        kind="inventory",
        site_id=site_id,
        client_id=client_id,
        now=now,
        payload={"action": action, "entity": entity, "key": key, "actor": principal.user_id},
    )


def _check_parent(session: Session, *, kind: str, parent_nro: str | None) -> None:
    if parent_nro is None:
        return
    if kind != "pm":
        raise InventoryInvalid("parent_nro: only a PM hangs off an NRO")
    parent = session.get(Site, parent_nro)
    if parent is None or parent.kind != "nro":
        raise InventoryInvalid(f"parent_nro: {parent_nro} is not a known NRO")


def create_site(session: Session, *, entry: SiteEntry, principal: Principal, now: datetime) -> Site:
    """Add a site (and the equipment listed with it)."""
    _noc_only(principal)
    if session.get(Site, entry.site_id) is not None:
        raise InventoryConflict(f"site {entry.site_id} already exists")
    _check_parent(session, kind=entry.kind, parent_nro=entry.parent_nro)
    site = Site(**entry.model_dump(exclude={"equipment"}))
    session.add(site)
    session.flush()
    for item in entry.equipment:
        session.add(Equipment(site_id=site.site_id, source="api", **item.model_dump()))
    _audit(
        session,
        principal=principal,
        action="created",
        entity="site",
        key=site.site_id,
        site_id=site.site_id,
        now=now,
    )
    session.flush()
    return site


def update_site(
    session: Session, *, site_id: str, changes: dict[str, Any], principal: Principal, now: datetime
) -> Site:
    """Change a site's name, kind, region, parent NRO or address."""
    _noc_only(principal)
    site = get_site(session, site_id)
    try:
        merged = SiteEntry.model_validate(
            {
                "site_id": site.site_id,
                "kind": site.kind,
                "name": site.name,
                "region": site.region,
                "parent_nro": site.parent_nro,
                "address": site.address,
                **changes,
            }
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InventoryInvalid(f"{where}: {first['msg']}") from err
    _check_parent(session, kind=merged.kind, parent_nro=merged.parent_nro)
    if merged.kind != "nro" and site.kind == "nro":
        children = session.scalar(
            select(func.count()).select_from(Site).where(Site.parent_nro == site_id)
        )
        if children:
            raise InventoryConflict(f"site {site_id}: {children} PM(s) hang off this NRO")
    for field in ("kind", "name", "region", "parent_nro", "address"):
        setattr(site, field, getattr(merged, field))
    _audit(
        session,
        principal=principal,
        action="updated",
        entity="site",
        key=site_id,
        site_id=site_id,
        now=now,
    )
    return site


def delete_site(session: Session, *, site_id: str, principal: Principal, now: datetime) -> None:
    """Remove a site that has no agent, service, PM, open alarm or open ticket left."""
    _noc_only(principal)
    site = get_site(session, site_id)
    in_the_way = {
        "agent(s)": session.scalar(
            select(func.count()).select_from(Agent).where(Agent.site_id == site_id)
        ),
        "service(s)": session.scalar(
            select(func.count()).select_from(Service).where(Service.site_id == site_id)
        ),
        "PM(s)": session.scalar(
            select(func.count()).select_from(Site).where(Site.parent_nro == site_id)
        ),
        "open alarm(s)": session.scalar(
            select(func.count())
            .select_from(Alarm)
            .where(Alarm.site_id == site_id, Alarm.state != "cleared")
        ),
        "open ticket(s)": session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.site_id == site_id, Ticket.state.in_([s.value for s in OPEN_STATES]))
        ),
    }
    blocking = [f"{n} {what}" for what, n in in_the_way.items() if n]
    if blocking:
        raise InventoryConflict(f"site {site_id} still has {', '.join(blocking)}")
    for item in session.scalars(select(Equipment).where(Equipment.site_id == site_id)):
        session.delete(item)
    session.delete(site)
    _audit(
        session,
        principal=principal,
        action="deleted",
        entity="site",
        key=site_id,
        site_id=site_id,
        now=now,
    )


def list_equipment(session: Session, *, site_id: str) -> list[Equipment]:
    """A site's equipment, by id."""
    return list(
        session.scalars(
            select(Equipment).where(Equipment.site_id == site_id).order_by(Equipment.equipment_id)
        )
    )


def upsert_equipment(
    session: Session,
    *,
    site_id: str,
    entry: EquipmentEntry,
    principal: Principal,
    now: datetime,
) -> Equipment:
    """Declare an equipment, or describe one an agent discovered."""
    _noc_only(principal)
    get_site(session, site_id)
    item = session.get(Equipment, (site_id, entry.equipment_id))
    action = "updated" if item is not None else "created"
    if item is None:
        item = Equipment(site_id=site_id, equipment_id=entry.equipment_id)
        session.add(item)
    for field in ("kind", "model", "label", "location"):
        setattr(item, field, getattr(entry, field))
    item.source = "api"
    _audit(
        session,
        principal=principal,
        action=action,
        entity="equipment",
        key=f"{site_id}/{entry.equipment_id}",
        site_id=site_id,
        now=now,
    )
    session.flush()
    return item


def delete_equipment(
    session: Session, *, site_id: str, equipment_id: str, principal: Principal, now: datetime
) -> None:
    """Remove an equipment that has no open alarm."""
    _noc_only(principal)
    item = session.get(Equipment, (site_id, equipment_id))
    if item is None:
        raise InventoryNotFound(f"equipment {equipment_id} not found at site {site_id}")
    open_alarms = session.scalar(
        select(func.count())
        .select_from(Alarm)
        .where(
            Alarm.site_id == site_id,
            Alarm.equipment_id == equipment_id,
            Alarm.state != "cleared",
        )
    )
    if open_alarms:
        raise InventoryConflict(
            f"equipment {site_id}/{equipment_id} still has {open_alarms} open alarm(s)"
        )
    session.delete(item)
    _audit(
        session,
        principal=principal,
        action="deleted",
        entity="equipment",
        key=f"{site_id}/{equipment_id}",
        site_id=site_id,
        now=now,
    )


def list_clients(session: Session, *, principal: Principal) -> list[Client]:
    """Every client (a client sees itself only)."""
    query = select(Client).order_by(Client.client_id)
    if principal.is_client:
        query = query.where(Client.client_id == principal.client_id)
    return list(session.scalars(query))


def save_client(
    session: Session, *, entry: ClientEntry, principal: Principal, now: datetime, create: bool
) -> Client:
    """Create a client (``create``) or replace an existing one's details."""
    _noc_only(principal)
    client = session.get(Client, entry.client_id)
    if create and client is not None:
        raise InventoryConflict(f"client {entry.client_id} already exists")
    if not create and client is None:
        raise InventoryNotFound(f"client {entry.client_id} not found")
    values = {**entry.model_dump(), "notify_emails": ",".join(entry.notify_emails)}
    if client is None:
        client = Client(**values)
        session.add(client)
    else:
        for field, value in values.items():
            setattr(client, field, value)
    _audit(
        session,
        principal=principal,
        action="created" if create else "updated",
        entity="client",
        key=entry.client_id,
        client_id=entry.client_id,
        now=now,
    )
    session.flush()
    return client


def list_services(
    session: Session,
    *,
    principal: Principal,
    client_id: str | None = None,
    site_id: str | None = None,
) -> list[Service]:
    """Services, filtered by client and/or site (a client sees its own only)."""
    query = select(Service).order_by(Service.hosting_ref)
    if principal.is_client:
        query = query.where(Service.client_id == principal.client_id)
    if client_id is not None:
        query = query.where(Service.client_id == client_id)
    if site_id is not None:
        query = query.where(Service.site_id == site_id)
    return list(session.scalars(query))


def create_service(
    session: Session, *, entry: ServiceEntry, principal: Principal, now: datetime
) -> Service:
    """A client's new service at a site; its hosting reference is unique."""
    _noc_only(principal)
    if session.get(Client, entry.client_id) is None:
        raise InventoryInvalid(f"client_id: unknown client {entry.client_id}")
    get_site(session, entry.site_id)
    taken = session.scalars(select(Service).where(Service.hosting_ref == entry.hosting_ref)).first()
    if taken is not None:
        raise InventoryConflict(
            f"hosting reference {entry.hosting_ref} is already a service of {taken.client_id}"
        )
    service = Service(**entry.model_dump())
    session.add(service)
    session.flush()
    _audit(
        session,
        principal=principal,
        action="created",
        entity="service",
        key=entry.hosting_ref,
        site_id=entry.site_id,
        client_id=entry.client_id,
        now=now,
    )
    return service


def delete_service(
    session: Session, *, hosting_ref: str, principal: Principal, now: datetime
) -> None:
    """End a client's service (its tickets stay, with their references)."""
    _noc_only(principal)
    service = session.scalars(select(Service).where(Service.hosting_ref == hosting_ref)).first()
    if service is None:
        raise InventoryNotFound(f"service {hosting_ref} not found")
    session.delete(service)
    _audit(
        session,
        principal=principal,
        action="deleted",
        entity="service",
        key=hosting_ref,
        site_id=service.site_id,
        client_id=service.client_id,
        now=now,
    )


def list_agents(session: Session, *, principal: Principal) -> list[Agent]:
    """Every agent the caller may see (a client: those at its sites)."""
    query = select(Agent).order_by(Agent.site_id, Agent.agent_id)
    if principal.is_client:
        query = query.where(
            Agent.site_id.in_(
                select(Service.site_id).where(Service.client_id == principal.client_id)
            )
        )
    return list(session.scalars(query))
