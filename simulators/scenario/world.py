"""Everything a scenario runs against: broker, collector, real agents, their simulated devices,
cuttable links, a fleet of virtual agents and the shared test clock.

Site files are used as written, except that each agent is pointed at this world: its broker
through a link proxy, its Modbus and SNMP devices at simulators that read the same profiles,
its trap and syslog listeners on free ports.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from clocks import SystemClock, WarpClock
from clocks.warp import ENV_VAR
from clocks.warp import advance as advance_clock
from simulators.devices.faults import Fault, FaultyProxy
from simulators.devices.modbus import ModbusDeviceSimulator
from simulators.devices.snmp import (
    COMMUNITY,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    SnmpDeviceSimulator,
    free_udp_port,
)
from simulators.fleet import Fleet, FleetConfig, FleetReport
from simulators.scenario.schema import Scenario
from simulators.stack import AgentProcess, Stack
from siteconfig import SiteConfig, load_site
from siteconfig.profiles import BitAlarm, ModbusProfile, SnmpProfile, ThresholdAlarm
from siteconfig.site import ModbusDevice, SnmpDevice

TRAP_ENGINE_ID = "8000000001020304aa"
TRAP_COMMUNITY = "public"


@dataclass
class SimulatedSite:
    """One real agent and what surrounds it."""

    agent: AgentProcess
    link: FaultyProxy
    modbus: dict[str, ModbusDeviceSimulator] = field(default_factory=dict)
    snmp: dict[str, SnmpDeviceSimulator] = field(default_factory=dict)
    trap_port: int | None = None


@dataclass(frozen=True)
class External:
    """A broker and collector already running (a test bench, a staging platform): the runner
    starts only the agents and their devices."""

    broker_host: str
    broker_port: int
    api_url: str
    token: str
    db_url: str | None = None  # only "delivered" expectations read the database


class WorldError(RuntimeError):
    """The scenario cannot run the way it was asked to."""


class World:
    """Starts and stops what a scenario needs; the runner drives it."""

    def __init__(
        self, scenario: Scenario, workdir: Path, *, external: External | None = None
    ) -> None:
        if external is not None and scenario.uses_test_clock:
            raise WorldError(
                "this scenario jumps time: it needs the runner's own collector (the test clock"
                " is set when the runner starts it), not --collector"
            )
        self.scenario = scenario
        self.workdir = workdir
        self.external = external
        self.clock_file = workdir / "test-clock.json"
        env = {ENV_VAR: str(self.clock_file)} if scenario.uses_test_clock else {}
        self.stack = Stack(workdir, inventory_dir=scenario.inventory, env=env)
        self.clock = WarpClock(self.clock_file) if scenario.uses_test_clock else SystemClock()
        self.sites: dict[str, SimulatedSite] = {}
        self.fleet_report: FleetReport | None = None
        self._fleet_thread: threading.Thread | None = None
        self._client_tokens: dict[str, str] = {}

    @property
    def broker_address(self) -> tuple[str, int]:
        """Where agents (through their link proxy) and the fleet reach the broker."""
        if self.external is not None:
            return self.external.broker_host, self.external.broker_port
        return "127.0.0.1", self.stack.broker.port

    @property
    def api_url(self) -> str:
        """The collector's base URL."""
        return self.external.api_url.rstrip("/") if self.external else self.stack.base_url

    @property
    def db_url(self) -> str | None:
        """The collector's database, when the runner can read it."""
        return self.external.db_url if self.external else self.stack.db_url

    def start(self, say: Any) -> None:
        """Broker, collector, agents with their devices; the fleet last."""
        if self.external is None:
            self.stack.broker.start()
            self.stack.noc_token = self.stack.create_token(name="scenario-noc", role="noc")
            self.stack.start_collector()
            say(f"collector up at {self.stack.base_url}")
        else:
            say(f"using the collector at {self.api_url} and the broker at {self.broker_address}")
        for site_file in self.scenario.sites:
            site = self._start_site(site_file)
            say(f"agent {site.agent.agent_id} started ({site.agent.site_id})")
        for site in self.sites.values():
            if site.agent.config.devices and _has_gpio(site.agent.config):
                self.stack.wait_for_gpio(site.agent.agent_id)
        if self.scenario.fleet is not None:
            self._start_fleet()
            say(f"fleet of {self.scenario.fleet.agents} virtual agents started")

    def stop(self) -> None:
        """Everything down, in reverse order; never raises."""
        if self._fleet_thread is not None:
            self._fleet_thread.join(timeout=60)
        self.stack.stop()  # with an external collector and broker, only the agents it started
        for site in self.sites.values():
            site.link.stop()
            for modbus in site.modbus.values():
                modbus.stop()
            for snmp in site.snmp.values():
                snmp.stop()

    def api(
        self, method: str, path: str, *, as_client: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Call the collector API as the NOC, or as a client (a token is made on first use)."""
        if as_client is None:
            token = self.external.token if self.external else self.stack.noc_token
        else:
            if self.external is not None:
                raise WorldError("as_client needs the runner's own collector (it makes the token)")
            if as_client not in self._client_tokens:
                self._client_tokens[as_client] = self.stack.create_token(
                    name=f"scenario-{as_client}", role="client", client_id=as_client
                )
            token = self._client_tokens[as_client]
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{self.api_url}{path}"
        return httpx.request(method, url, headers=headers, timeout=10.0, **kwargs)

    def enrol(self, bindings: dict[str, str]) -> None:
        """Enrol agents for their sites (the collector admits enrolled agents only): in the
        runner's own collector's database, or through an external collector's API (which adds
        a site its inventory does not have)."""
        if self.external is None:
            self.stack.enrol_all(bindings)
            return
        for agent_id, site_id in bindings.items():
            path = f"/api/v1/agents/{agent_id}"
            response = self.api("PUT", path, json={"site_id": site_id})
            if response.status_code == 404:
                kind = "nro" if site_id.upper().startswith("NRO") else "pm"
                created = self.api("POST", "/api/v1/sites", json={"site_id": site_id, "kind": kind})
                if created.status_code not in (201, 409):
                    raise WorldError(f"cannot add site {site_id}: {created.text}")
                response = self.api("PUT", path, json={"site_id": site_id})
            if response.status_code != 200:
                raise WorldError(f"cannot enrol agent {agent_id}: {response.text}")

    def advance(self, seconds: float) -> None:
        """Jump the shared test clock."""
        advance_clock(self.clock_file, seconds)

    def set_link(self, agent_id: str, *, up: bool) -> None:
        """Cut or restore an agent's network path to the broker."""
        self.sites[agent_id].link.set_fault(Fault.NONE if up else Fault.DOWN)

    def _start_site(self, site_file: Path) -> SimulatedSite:
        config = load_site(site_file)
        link = FaultyProxy(target=self.broker_address)
        link.start()
        modbus: dict[str, ModbusDeviceSimulator] = {}
        snmp: dict[str, SnmpDeviceSimulator] = {}
        for device in config.devices:
            profile = config.profile_of(device)
            if isinstance(device, ModbusDevice) and isinstance(profile, ModbusProfile):
                rtu = device.transport.kind == "rtu"
                modbus[device.id] = ModbusDeviceSimulator(profile, rtu=rtu)
                modbus[device.id].start()
                _set_normal(modbus[device.id])
            elif isinstance(device, SnmpDevice) and isinstance(profile, SnmpProfile):
                workdir = self.workdir / "devices" / config.agent_id / device.id
                snmp[device.id] = SnmpDeviceSimulator(profile, workdir)
                snmp[device.id].start()
        trap_port = free_udp_port() if config.traps is not None else None

        def rewrite(raw: dict[str, Any]) -> dict[str, Any]:
            return _point_at_world(
                raw, link_port=link.port, modbus=modbus, snmp=snmp, trap_port=trap_port
            )

        self.enrol({config.agent_id: config.site_id})
        agent = self.stack.add_agent(site_file, rewrite=rewrite, enrol=False)
        site = SimulatedSite(agent, link, modbus, snmp, trap_port)
        self.sites[agent.agent_id] = site
        return site

    def _start_fleet(self) -> None:
        spec = self.scenario.fleet
        assert spec is not None
        host, port = self.broker_address
        config = FleetConfig(
            host=host,
            port=port,
            agents=spec.agents,
            id_prefix=spec.prefix,
            msgs_per_agent_per_min=0.0,
            heartbeat_s=30.0,
            storm_sites=spec.storm_sites,
            storm_at_s=spec.storm_at_s,
            storm_window_s=spec.storm_window_s,
        )
        duration = self.scenario.duration_s
        self.enrol(config.bindings())

        def run() -> None:
            fleet = Fleet(config, clock=self.clock)
            self.fleet_report = asyncio.run(fleet.run(duration_s=duration, drain_s=5.0))

        self._fleet_thread = threading.Thread(target=run, name="scenario-fleet", daemon=True)
        self._fleet_thread.start()


def _has_gpio(config: SiteConfig) -> bool:
    return any(d.driver == "gpio" for d in config.devices)


def _set_normal(simulator: ModbusDeviceSimulator) -> None:
    # A healthy device at start: every alarm on its clear side, as a technician would find it.
    done: set[tuple[int, int]] = set()
    for name, point in simulator.profile.points.items():
        key = (point.function, point.address)
        if point.bit is None and key in done:
            continue  # two points read one register (high and low thresholds): set it once
        alarm = point.alarm
        value: float | bool = 0.0
        if isinstance(alarm, BitAlarm):
            value = not alarm.when
        elif isinstance(alarm, ThresholdAlarm):
            margin = abs(alarm.raise_at - alarm.clear_at)
            above = alarm.direction == "above"
            value = alarm.clear_at - margin if above else alarm.clear_at + margin
        simulator.set(name, value)
        if point.bit is None:
            done.add(key)


def _point_at_world(
    raw: dict[str, Any],
    *,
    link_port: int,
    modbus: dict[str, ModbusDeviceSimulator],
    snmp: dict[str, SnmpDeviceSimulator],
    trap_port: int | None,
) -> dict[str, Any]:
    mqtt = raw.setdefault("mqtt", {})
    mqtt["port"] = link_port
    for key in ("tls", "username", "password_file", "ack_key_file"):
        mqtt.pop(key, None)  # the scenario broker is plain MQTT on loopback
    for device in raw.get("devices", []):
        if device["id"] in modbus:
            simulator = modbus[device["id"]]
            if device["transport"]["kind"] == "rtu":
                # The serial line is a pseudo-terminal; baud rate and parity stay as written.
                device["transport"] = {**device["transport"], "port": simulator.serial_port}
            else:
                device["transport"] = {"kind": "tcp", "host": "127.0.0.1", "port": simulator.port}

        elif device["id"] in snmp:
            device["host"], device["port"] = "127.0.0.1", snmp[device["id"]].port
            if device.get("auth", {}).get("version") == "v3":
                device["auth"] = {
                    "version": "v3",
                    "user": V3_USER,
                    "auth_key": V3_AUTH,
                    "priv_key": V3_PRIV,
                }
            else:
                device["auth"] = {"version": "v2c", "community": COMMUNITY}
    if trap_port is not None:
        raw["traps"] = {
            "bind": "127.0.0.1",
            "port": trap_port,
            "communities": [TRAP_COMMUNITY],
            "users": [
                {
                    "user": V3_USER,
                    "auth_key": V3_AUTH,
                    "priv_key": V3_PRIV,
                    "engine_id": TRAP_ENGINE_ID,
                }
            ],
        }
    if "syslog" in raw:
        raw["syslog"] = {**raw["syslog"], "bind": "127.0.0.1", "port": free_udp_port()}
    return raw
