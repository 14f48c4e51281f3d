"""Loading the inventory (sites, clients, services, enrolled agents) from YAML files, validated,
as an upsert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from collector.inventory.models import Agent, Client, Equipment, Service, Site, UnenrolledAgent
from collector.sla.contracts import load_contracts
from protocol.topics import AGENT_ID_PATTERN

IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
CLIENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class InventoryError(ValueError):
    """An inventory file that cannot be loaded: file, path and reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _refuse_duplicates(ids: Iterable[str], *, where: str, what: str) -> None:
    """Two entries with one id are refused by name and position: the store keeps one row per
    id, so loading both would either fail deep in the database or silently keep the last."""
    seen: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in seen:
            raise ValueError(
                f"{where}.{i}: duplicate {what} {ident!r} (already {where}.{seen[ident]})"
            )
        seen[ident] = i


class EquipmentDetails(_Strict):
    """What describes an equipment (the API body; its id is in the path)."""

    kind: str = Field(default="", max_length=32)
    model: str = Field(default="", max_length=128)
    label: str = Field(default="", max_length=200)
    location: str = Field(default="", max_length=2000)


class EquipmentEntry(EquipmentDetails):
    """An equipment of a site."""

    equipment_id: str = Field(pattern=IDENT_PATTERN)


class SiteEntry(_Strict):
    """A site of the inventory."""

    site_id: str = Field(pattern=IDENT_PATTERN)
    kind: Literal["nro", "pm"]
    name: str = ""
    region: str = "unknown"
    parent_nro: str | None = None
    address: str = ""
    equipment: list[EquipmentEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_equipment(self) -> SiteEntry:
        _refuse_duplicates(
            (e.equipment_id for e in self.equipment), where="equipment", what="equipment id"
        )
        return self


class ClientDetails(_Strict):
    """What describes a client (the API body; its id is in the path)."""

    name: str
    notify_emails: list[str] = Field(default_factory=list)
    notify_webhook: str | None = Field(default=None, pattern=r"^https?://")
    sav_contract: str = "sav-working-hours"

    @field_validator("sav_contract")
    @classmethod
    def _known_contract(cls, contract_id: str) -> str:
        try:
            load_contracts().get(contract_id)
        except KeyError as err:
            raise ValueError(err.args[0]) from err
        return contract_id


class ClientEntry(ClientDetails):
    """A hosted operator."""

    client_id: str = Field(pattern=CLIENT_ID_PATTERN)


class ServiceEntry(_Strict):
    """A client's service at a site."""

    client_id: str
    site_id: str
    hosting_ref: str = Field(pattern=r"^HEB\d{5}$")
    remote_ref: str = ""


class AgentEntry(_Strict):
    """An enrolled agent and the one site it may speak for (``enrol-agent`` writes these)."""

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    site_id: str


class InventoryFile(_Strict):
    """One inventory file."""

    sites: list[SiteEntry] = Field(default_factory=list)
    clients: list[ClientEntry] = Field(default_factory=list)
    services: list[ServiceEntry] = Field(default_factory=list)
    agents: list[AgentEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> InventoryFile:
        _refuse_duplicates((s.site_id for s in self.sites), where="sites", what="site id")
        _refuse_duplicates((c.client_id for c in self.clients), where="clients", what="client id")
        _refuse_duplicates(
            (s.hosting_ref for s in self.services), where="services", what="hosting_ref"
        )
        _refuse_duplicates((a.agent_id for a in self.agents), where="agents", what="agent id")
        return self


def read_inventory(path: Path) -> InventoryFile:
    """Parse and validate one file."""
    try:
        raw = yaml.safe_load(path.read_text())
        return InventoryFile.model_validate(raw or {})
    except (OSError, yaml.YAMLError) as err:
        raise InventoryError(f"{path}: cannot read: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InventoryError(f"{path}: {where}: {first['msg']}") from err


def load_inventory(session: Session, directory: Path) -> int:
    """Upsert every file of ``directory``; returns how many entries were applied."""
    if not directory.is_dir():
        raise InventoryError(f"{directory}: no such inventory directory")
    count = 0
    for path in sorted(directory.glob("*.yaml")):
        inventory = read_inventory(path)
        for site in inventory.sites:
            session.merge(Site(**site.model_dump(exclude={"equipment"})))
            for item in site.equipment:
                session.merge(
                    Equipment(site_id=site.site_id, source="inventory", **item.model_dump())
                )
        for client in inventory.clients:
            session.merge(
                Client(**{**client.model_dump(), "notify_emails": ",".join(client.notify_emails)})
            )
        session.flush()
        known_sites = {s for s in session.scalars(select(Site.site_id))}
        for i, service in enumerate(inventory.services):
            if service.site_id not in known_sites:
                raise InventoryError(
                    f"{path}: services.{i}.site_id: unknown site {service.site_id}"
                )
            existing = session.scalars(
                select(Service).where(Service.hosting_ref == service.hosting_ref)
            ).first()
            if existing is None:
                session.add(Service(**service.model_dump()))
            else:
                existing.client_id, existing.site_id = service.client_id, service.site_id
                existing.remote_ref = service.remote_ref
        for i, entry in enumerate(inventory.agents):
            if entry.site_id not in known_sites:
                raise InventoryError(f"{path}: agents.{i}.site_id: unknown site {entry.site_id}")
        bind_agents(session, {entry.agent_id: entry.site_id for entry in inventory.agents})
        count += len(inventory.sites) + len(inventory.clients) + len(inventory.services)
        count += len(inventory.agents)
    session.flush()
    return count


def bind_agent(session: Session, *, agent_id: str, site_id: str) -> Agent:
    """Enrol ``agent_id`` for ``site_id`` (or move it there): from now on ingest admits its
    messages for that site only. It stops being held as an unenrolled agent."""
    bind_agents(session, {agent_id: site_id})
    agent = session.get(Agent, agent_id)
    assert agent is not None
    return agent


def bind_agents(session: Session, bindings: Mapping[str, str]) -> None:
    """``bind_agent`` for many (agent id -> site id) at once: a national fleet's worth."""
    if not bindings:
        return
    ids = sorted(bindings)
    current: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        current.update(
            session.execute(
                select(Agent.agent_id, Agent.site_id).where(Agent.agent_id.in_(chunk))
            ).all()
        )
        session.execute(delete(UnenrolledAgent).where(UnenrolledAgent.agent_id.in_(chunk)))
    new = [{"agent_id": a, "site_id": bindings[a]} for a in ids if a not in current]
    moved = [
        {"agent_id": a, "site_id": bindings[a]}
        for a in ids
        if a in current and current[a] != bindings[a]
    ]
    if new:
        session.execute(insert(Agent), new)
    if moved:
        session.execute(update(Agent), moved)
    session.flush()


ENROLLED_FILE = "enrolled.yaml"


def check_binding(directory: Path, *, agent_id: str, site_id: str) -> set[str]:
    """Refuse (``InventoryError``) an inventory folder that cannot take the binding: a file
    that does not load, or another file binding the agent elsewhere (moving a box to another
    site is a decision to make in that file, not by accident). Returns the sites it lists."""
    if not directory.is_dir():
        raise InventoryError(f"{directory}: no such inventory directory")
    sites: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        inventory = read_inventory(path)
        sites.update(s.site_id for s in inventory.sites)
        for entry in inventory.agents:
            if (
                path.name != ENROLLED_FILE
                and entry.agent_id == agent_id
                and entry.site_id != site_id
            ):
                raise InventoryError(
                    f"{path}: agent {agent_id} is bound to site {entry.site_id} there, "
                    f"not {site_id}: change that file to move it"
                )
    return sites


def record_enrolment(directory: Path, *, agent_id: str, site: SiteEntry) -> Path:
    """Write an agent's binding to its site into the inventory folder (``enrolled.yaml``), with
    the site itself when no inventory file has it yet; returns the file written."""
    sites = check_binding(directory, agent_id=agent_id, site_id=site.site_id)
    target = directory / ENROLLED_FILE
    current = read_inventory(target) if target.exists() else InventoryFile()
    agents = [a for a in current.agents if a.agent_id != agent_id]
    agents.append(AgentEntry(agent_id=agent_id, site_id=site.site_id))
    updated = current.model_copy(
        update={
            "sites": [*current.sites, site] if site.site_id not in sites else current.sites,
            "agents": sorted(agents, key=lambda a: a.agent_id),
        }
    )
    text = (
        "# Agents enrolled by `shelterwatch collector enrol-agent --inventory` (and their sites\n"
        "# when no other inventory file had them). Each agent may speak for its own site only.\n"
        + yaml.safe_dump(updated.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    )
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(target)
    except OSError as err:
        raise InventoryError(f"{target}: cannot write: {err.strerror or err}") from err
    return target
