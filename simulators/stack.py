"""A whole shelterwatch chain on one machine: broker, collector, agents as real processes.

Used by the demo, the end-to-end tests and the scenario runner, so all three exercise the
same wiring a deployment uses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from protocol.acksig import derive_ack_key
from simulators.broker import MosquittoProcess, free_port, port_in_use
from simulators.gpio import GpioDriver
from simulators.processes import ChildProcess, cli_argv
from simulators.secured_broker import SecuredBroker
from siteconfig import ContactPoint, GpioDevice, GpioProfile, SiteConfig, load_site

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class StackError(RuntimeError):
    """A component of the stack did not come up."""


@dataclass
class AgentProcess:
    """One real agent process and what the stack needs to drive it."""

    agent_id: str
    site_id: str
    site_file: Path
    gpio_socket: Path
    outbox_path: Path
    process: ChildProcess
    config: SiteConfig

    def contact(self, point: str) -> tuple[int, ContactPoint]:
        """BCM pin and definition of a contact point, searched across GPIO devices."""
        for device in self.config.devices:
            profile = self.config.profile_of(device)
            if not (isinstance(device, GpioDevice) and isinstance(profile, GpioProfile)):
                continue
            if point in device.pins:
                return device.pins[point], profile.points[point]
        raise KeyError(f"agent {self.agent_id} has no contact point {point!r}")


class Stack:
    """Starts and stops the real components; owns their working directory."""

    def __init__(
        self,
        workdir: Path,
        *,
        http_port: int | None = None,
        broker_port: int | None = None,
        db_url: str | None = None,
        inventory_dir: Path | None = None,
        env: dict[str, str] | None = None,
        ack_secret: bytes | None = None,
        secured: bool = False,
    ) -> None:
        """``ack_secret``: the collectors' master secret; given, the collector signs its acks
        and every agent added gets its derived key (``mqtt.ack_key_file``).

        ``secured``: the broker is configured by enrolment (``SecuredBroker``): the collector
        runs as instance ``c1`` with its broker user, each agent added is enrolled on the
        running broker with its own user, password and ack key (``ack_secret`` is then the
        enrolment's)."""
        self.workdir = workdir
        # Extra environment of every process started (e.g. the scenario's test clock).
        self.env = dict(env or {})
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port = http_port if http_port is not None else free_port()
        self.secured = SecuredBroker(workdir / "secured", port=broker_port) if secured else None
        self.broker = (
            self.secured.process
            if self.secured is not None
            else MosquittoProcess(workdir / "broker", port=broker_port)
        )
        self.db_url = db_url or f"sqlite:///{(workdir / 'collector.db').resolve()}"
        self.ack_secret = ack_secret
        secret_args: list[str] = []
        if self.secured is not None:
            self.ack_secret = self.secured.ack_secret
            collector = self.secured.collector("c1")
            secret_args = [
                "--ack-secret-file",
                str(self.secured.ack_secret_file.resolve()),
                "--instance-id",
                "c1",
                "--broker-user",
                collector.username,
                "--broker-password-file",
                str(collector.password_file.resolve()),
            ]
        elif ack_secret is not None:
            secret_file = (workdir / "ack-secret").resolve()
            _write_secret(secret_file, ack_secret.hex())
            secret_args = ["--ack-secret-file", str(secret_file)]
        self.collector = ChildProcess(
            "collector",
            cli_argv(
                "collector",
                "run",
                "--db",
                self.db_url,
                "--broker",
                f"127.0.0.1:{self.broker.port}",
                "--http",
                f"127.0.0.1:{self.http_port}",
                *(["--inventory", str(inventory_dir)] if inventory_dir else []),
                *secret_args,
            ),
            log_path=workdir / "logs" / "collector.log",
            env=self.env,
        )
        self.agents: dict[str, AgentProcess] = {}
        self.noc_token = ""

    @property
    def base_url(self) -> str:
        """Where the API and dashboard answer."""
        return f"http://127.0.0.1:{self.http_port}"

    def check_ports(self) -> None:
        """Fail early, with the port named, when the HTTP port is taken."""
        if port_in_use(self.http_port):
            raise StackError(f"HTTP port {self.http_port} is already in use (choose --http-port)")

    def create_token(self, *, name: str, role: str, client_id: str | None = None) -> str:
        """Create an API user in the collector database and return its token."""
        from clocks import SystemClock
        from collector.identity.access import Role
        from collector.identity.tokens import create_user
        from collector.process import prepare_database

        factory = prepare_database(self.db_url)
        with factory() as session:
            _, token = create_user(
                session, name=name, role=Role(role), client_id=client_id, now=SystemClock().now()
            )
            session.commit()
        factory.kw["bind"].dispose()
        return token

    def enrol(self, *, agent_id: str, site_id: str) -> None:
        """Enrol an agent for its site in the collector's inventory, as ``enrol-agent`` and
        the inventory's ``agents`` do (the collector admits only enrolled agents)."""
        self.enrol_all({agent_id: site_id})

    def enrol_all(self, bindings: Mapping[str, str]) -> None:
        """Enrol agents (agent id -> site id); the sites the inventory does not have yet are
        added."""
        enrol_agents(self.db_url, bindings)

    def start_collector(self, *, timeout_s: float = 30.0) -> None:
        """Start the collector and wait until its API answers."""
        self.collector.start()
        self._wait_healthz({200, 503}, timeout_s=timeout_s, what="collector API did not answer")

    def wait_ready(self, *, timeout_s: float = 30.0) -> None:
        """Wait until the collector is subscribed to the agents' topics (/healthz 200).

        The API answers before that. Agents lose nothing meanwhile (they re-send until acked),
        but a message nobody re-sends, published to a broker that has never seen the
        collector's subscription, is not kept for it."""
        self._wait_healthz({200}, timeout_s=timeout_s, what="collector not subscribed")

    def _wait_healthz(self, statuses: set[int], *, timeout_s: float, what: str) -> None:
        """Poll /healthz until it answers one of ``statuses``; fail early if the collector
        exits, or after ``timeout_s`` saying ``what`` and the end of its log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.collector.running:
                raise StackError(f"collector exited:\n{self.collector.tail()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code in statuses:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StackError(f"{what} within {timeout_s} s:\n{self.collector.tail()}")

    def add_agent(
        self,
        site_file: Path,
        *,
        rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        enrol: bool = True,
        env: Mapping[str, str] | None = None,
        launcher: Sequence[str] = (),
    ) -> AgentProcess:
        """Derive a site file pointing at this stack's broker and workdir, then start the agent.

        ``rewrite`` may change the derived file further (devices pointed at simulators, the
        broker reached through a link that can be cut). The agent is enrolled for its site
        (``enrol=False``: not, as an agent nobody enrolled). ``env``: more environment for this
        agent alone (a test wall clock, say). ``launcher`` runs the agent's command through
        another (``ip netns exec NAME``: in a network namespace)."""

        raw: dict[str, Any] = yaml.safe_load(site_file.read_text())
        agent_id = str(raw["agent_id"])
        agent_dir = self.agent_dir(agent_id)
        agent_dir.mkdir(parents=True, exist_ok=True)
        outbox_path = agent_dir / "outbox.db"
        raw.setdefault("mqtt", {}).update({"host": "127.0.0.1", "port": self.broker.port})
        raw.setdefault("outbox", {})["path"] = str(outbox_path)
        if self.secured is not None:
            enrolled = self.secured.enrol_agent(agent_id)
            assert enrolled.ack_key_file is not None
            raw["mqtt"].update(
                username=enrolled.username,
                password_file=str(enrolled.password_file.resolve()),
                ack_key_file=str(enrolled.ack_key_file.resolve()),
            )
        elif self.ack_secret is not None:
            key_file = agent_dir / "ack-key"
            _write_secret(key_file, derive_ack_key(self.ack_secret, agent_id).hex())
            raw["mqtt"]["ack_key_file"] = str(key_file)
        raw = _absolute_profiles(raw, site_file)
        if rewrite is not None:
            raw = rewrite(raw)
        derived = agent_dir / site_file.name
        derived.write_text(yaml.safe_dump(raw, sort_keys=False))
        socket_path = _unix_socket_path(agent_dir / "gpio.sock")
        config = load_site(derived)
        process = ChildProcess(
            f"agent-{agent_id}",
            [*launcher, *cli_argv("agent", "run", "--config", str(derived))],
            log_path=self.workdir / "logs" / f"agent-{agent_id}.log",
            env={
                **self.env,
                **(env or {}),
                "GPIOZERO_PIN_FACTORY": "shelterwatch_sim",
                "SHELTERWATCH_GPIO_SOCKET": str(socket_path),
                # Every contact starts in its normal position: no alarm at start.
                "SHELTERWATCH_GPIO_INITIAL": ",".join(
                    f"{pin}={int(level)}" for pin, level in _normal_levels(config).items()
                ),
            },
        )
        agent = AgentProcess(
            agent_id=agent_id,
            site_id=str(raw["site_id"]),
            site_file=derived,
            gpio_socket=socket_path,
            outbox_path=outbox_path,
            process=process,
            config=config,
        )
        self.agents[agent_id] = agent
        if enrol:
            self.enrol(agent_id=agent_id, site_id=agent.site_id)
        process.start()
        return agent

    def agent_dir(self, agent_id: str) -> Path:
        """Where an agent added to this stack keeps its files (``outbox.db`` among them): a
        test may fill its outbox before the agent starts."""
        return (self.workdir / "agents" / agent_id).resolve()

    def wait_for_gpio(self, agent_id: str, *, timeout_s: float = 20.0) -> None:
        """Wait until the agent's simulated GPIO socket accepts commands."""
        agent = self.agents[agent_id]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if agent.gpio_socket.exists():
                return
            if not agent.process.running:
                raise StackError(f"agent {agent_id} exited:\n{agent.process.tail()}")
            time.sleep(0.05)
        raise StackError(f"agent {agent_id} GPIO socket did not appear:\n{agent.process.tail()}")

    def set_contact(self, agent_id: str, point: str, *, alarm: bool) -> None:
        """Put a contact in its alarm position (door open, fire relay closed...) or back."""
        agent = self.agents[agent_id]
        pin, spec = agent.contact(point)
        position_closed = (spec.alarm.when == "closed") == alarm
        level = _level(position_closed, pull_up=spec.pull_up)
        # The contact keeps its position when the box reboots: a restarted agent reads it again.
        levels = dict(
            item.split("=") for item in agent.process.env["SHELTERWATCH_GPIO_INITIAL"].split(",")
        )
        levels[str(pin)] = str(int(level))
        agent.process.env["SHELTERWATCH_GPIO_INITIAL"] = ",".join(
            f"{k}={v}" for k, v in levels.items()
        )
        if agent.process.running:
            GpioDriver(agent.gpio_socket).set(pin, level)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the collector API as the NOC."""
        headers = {"Authorization": f"Bearer {self.noc_token}"}
        return httpx.request(
            method, f"{self.base_url}{path}", headers=headers, timeout=10.0, **kwargs
        )

    def stop(self) -> None:
        """Stop agents, then the collector, then the broker."""
        for agent in self.agents.values():
            agent.process.stop()
        self.collector.stop()
        self.broker.stop()


def enrol_agents(db_url: str, bindings: Mapping[str, str]) -> None:
    """Enrol agents (agent id -> site id) in a collector database: what ``enrol-agent`` and
    the inventory's ``agents`` do, for simulated fleets (see ``enrol_in``)."""
    from collector.process import prepare_database

    factory = prepare_database(db_url)
    with factory() as session:
        enrol_in(session, bindings)
        session.commit()
    factory.kw["bind"].dispose()


def enrol_in(session: Session, bindings: Mapping[str, str]) -> None:
    """Enrol agents in the session's database, adding the sites it does not have yet (a PM,
    or an NRO when the id says so)."""
    from sqlalchemy import select

    from collector.inventory.files import bind_agents
    from collector.inventory.models import Site

    known = set(session.scalars(select(Site.site_id)))
    for site_id in sorted(set(bindings.values()) - known):
        kind = "nro" if site_id.upper().startswith("NRO") else "pm"
        session.add(Site(site_id=site_id, kind=kind, name=site_id))
    session.flush()
    bind_agents(session, bindings)


def _write_secret(path: Path, hex_digits: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(hex_digits + "\n")


def _unix_socket_path(wanted: Path) -> Path:
    # A Unix socket path holds 107 bytes; deep working directories (pytest's) go past that.
    if len(str(wanted).encode()) <= 107:
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"shelterwatch-gpio-{digest}.sock"


def _level(closed: bool, *, pull_up: bool) -> bool:
    # With a pull-up a closed switch pulls the pin to ground; with a pull-down, to 3.3 V.
    return not closed if pull_up else closed


def _normal_levels(config: SiteConfig) -> dict[int, bool]:
    levels: dict[int, bool] = {}
    for device in config.devices:
        profile = config.profile_of(device)
        if not (isinstance(device, GpioDevice) and isinstance(profile, GpioProfile)):
            continue
        for point, pin in device.pins.items():
            spec = profile.points[point]
            levels[pin] = _level(spec.alarm.when == "open", pull_up=spec.pull_up)
    return levels


def _absolute_profiles(raw: dict[str, Any], site_file: Path) -> dict[str, Any]:
    # A derived site file lives elsewhere: make a relative profiles directory absolute.
    profiles = raw.get("profiles_dir")
    if isinstance(profiles, str) and not Path(profiles).is_absolute():
        raw["profiles_dir"] = str((site_file.parent / profiles).resolve())
    return raw
