"""The devices against peers not written here, through the real agent, broker and collector:
net-snmp's ``snmpd`` serving UPS-MIB (only the basic objects, and all of them), net-snmp's
``snmptrap`` in v2c and v3 at each security level (traps and informs), ``logger`` in RFC 3164
and RFC 5424 and raw Cisco-style lines, and a pyModbusTCP power plant. Every alarm is asserted
as the NOC sees it from the collector's API: raised, then cleared; every refused trap is counted
in the agent view."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.devices.modbus import ModbusDeviceSimulator
from simulators.devices.snmp import (
    COMMUNITY,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    SnmpDeviceSimulator,
    free_udp_port,
)
from simulators.stack import Stack
from siteconfig import load_profile
from siteconfig.profiles import ModbusProfile, SnmpProfile
from tests.conftest import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_config" / "profiles"
EXAMPLE = ROOT / "firmware_config" / "sites" / "snmp-example.yaml"
UPS = "1.3.6.1.2.1.33"
ON_BATTERY_TRAP = f"{UPS}.2.0.1"  # upsTrapOnBattery
# What RFC 1628's basic groups make mandatory, of what the shipped profile reads.
BASIC = {
    f"{UPS}.1.2.1.0": ("integer", "2"),  # upsBatteryStatus normal
    f"{UPS}.1.2.2.0": ("integer", "0"),  # upsSecondsOnBattery
    f"{UPS}.1.4.1.0": ("integer", "3"),  # upsOutputSource normal
    f"{UPS}.1.6.1.0": ("gauge", "0"),  # upsAlarmsPresent
}
ENGINE_FULL = "8000000001020304aa"  # the authoritative engine id ups-full sends v3 traps with
WATCHER, WATCHER_AUTH = "watcher", "watcher-auth-key"  # a v3 user configured authNoPriv
OTHER_SENDER = "127.0.0.2"  # a UPS whose traps come from an address it is not polled at


def _profile(name: str) -> Any:
    return load_profile(PROFILES / f"{name}.yaml")


class Peers:
    """The devices of the site: two snmpd, one Modbus server, and this machine's net-snmp and
    ``logger`` as trap and syslog senders."""

    def __init__(self, workdir: Path) -> None:
        ups = _profile("snmp-ups-mib")
        plant = _profile("modbus-dc-power-plant")
        assert isinstance(ups, SnmpProfile) and isinstance(plant, ModbusProfile)
        self.ups_min = SnmpDeviceSimulator(ups, workdir / "ups-min", values=BASIC)
        self.ups_full = SnmpDeviceSimulator(ups, workdir / "ups-full")
        self.plant = ModbusDeviceSimulator(plant)
        for point, value in {"mains_present": True, "battery_voltage": 54.0}.items():
            self.plant.set(point, value)
        self.trap_port, self.syslog_port = free_udp_port(), free_udp_port()
        self.home = workdir / "net-snmp"
        self.home.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.ups_min.start()
        self.ups_full.start()
        self.plant.start()

    def stop(self) -> None:
        self.ups_min.stop()
        self.ups_full.stop()
        self.plant.stop()

    def site(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The agent's site file: the three UPS, the plant, and both listeners."""
        example = yaml.safe_load(EXAMPLE.read_text())
        patterns = [
            {**p, "host": "127.0.0.1"} if "host" in p else p for p in example["syslog"]["patterns"]
        ]
        snmp = {"driver": "snmp", "profile": "snmp-ups-mib", "poll_s": 0.3, "timeout_s": 1.0}
        v2c = {"version": "v2c", "community": COMMUNITY}
        # The example's broker account and TLS are a real site's: this stack's broker is open.
        raw["mqtt"] = {k: raw["mqtt"][k] for k in ("host", "port")} | {"heartbeat_s": 1.0}
        raw["devices"] = [
            {**snmp, "id": "ups-min", "host": "127.0.0.1", "port": self.ups_min.port, "auth": v2c},
            {
                **snmp,
                "id": "ups-full",
                "host": "127.0.0.1",
                "port": self.ups_full.port,
                "auth": {
                    "version": "v3",
                    "user": V3_USER,
                    "auth_key": V3_AUTH,
                    "priv_key": V3_PRIV,
                    "engine_id": ENGINE_FULL,
                },
            },
            # Polled by name, its traps sent from another address (``traps.sources``).
            {**snmp, "id": "ups-w", "host": "localhost", "port": self.ups_min.port, "auth": v2c},
            {
                "driver": "modbus",
                "id": "rect-1",
                "profile": "modbus-dc-power-plant",
                "transport": {"kind": "tcp", "host": "127.0.0.1", "port": self.plant.port},
                "poll_s": 0.3,
                "timeout_s": 1.0,
            },
        ]
        raw["traps"] = {
            "bind": "127.0.0.1",
            "port": self.trap_port,
            "communities": [COMMUNITY],
            "users": [
                {
                    "user": V3_USER,
                    "auth_key": V3_AUTH,
                    "priv_key": V3_PRIV,
                    "engine_id": ENGINE_FULL,
                },
                {
                    "user": WATCHER,
                    "security_level": "authNoPriv",
                    "auth_key": WATCHER_AUTH,
                    "engine_id": "8000000001020304cc",
                },
            ],
            "sources": {OTHER_SENDER: "ups-w"},
        }
        raw["syslog"] = {"bind": "127.0.0.1", "port": self.syslog_port, "patterns": patterns}
        return raw

    def snmptrap(self, *security: str, inform: bool = False, sender: str = "127.0.0.1") -> None:
        """One upsTrapOnBattery from the real net-snmp CLI; an inform waits for the answer."""
        argv = [
            "snmptrap",
            *(["-Ci"] if inform else []),
            f"--clientaddr={sender}",
            "-t",
            "2",
            "-r",
            "1",
            *security,
            f"127.0.0.1:{self.trap_port}",
            "",
            ON_BATTERY_TRAP,
        ]
        env = {**os.environ, "MIBS": "", "SNMPCONFPATH": str(self.home), "HOME": str(self.home)}
        done = subprocess.run(argv, capture_output=True, env=env, check=False, timeout=20)
        if inform or done.returncode != 0:
            assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.decode()}"

    def logger(self, *args: str) -> None:
        base = ["logger", "-d", "-n", "127.0.0.1", "-P", str(self.syslog_port)]
        subprocess.run([*base, *args], check=True, timeout=10)

    def raw_syslog(self, line: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(line, ("127.0.0.1", self.syslog_port))


def v2c() -> list[str]:
    return ["-v", "2c", "-c", COMMUNITY]


def v3(level: str, *, user: str = V3_USER, engine: str | None = ENGINE_FULL) -> list[str]:
    args = ["-v", "3", "-u", user, "-l", level, *(["-e", f"0x{engine}"] if engine else [])]
    if level != "noAuthNoPriv":
        args += ["-a", "SHA", "-A", V3_AUTH if user == V3_USER else WATCHER_AUTH]
    if level == "authPriv":
        args += ["-x", "AES", "-X", V3_PRIV]
    return args


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    running = Peers(tmp_path / "peers")
    running.start()
    try:
        yield running
    finally:
        running.stop()


class Noc:
    """What the NOC sees of the site, through the collector's API."""

    def __init__(self, stack: Stack, site_id: str) -> None:
        self.stack, self.site_id = stack, site_id

    def alarms(self, equipment: str, alarm_type: str) -> list[dict[str, Any]]:
        page = self.stack.api(
            "GET",
            "/api/v1/alarms",
            params={
                "site_id": self.site_id,
                "equipment_id": equipment,
                "alarm_type": alarm_type,
                "limit": 500,
            },
        )
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        return items

    def cleared(self, equipment: str, alarm_type: str) -> int:
        return sum(a["state"] == "cleared" for a in self.alarms(equipment, alarm_type))

    def raised_then_cleared(self, equipment: str, alarm_type: str, cause: Any) -> None:
        """``cause`` makes the device raise the alarm once; the NOC must then see one more alarm
        of its kind, cleared (each raise after a clear is a new alarm at the collector)."""
        before = self.cleared(equipment, alarm_type)
        cause()
        wait_for(
            f"{alarm_type} on {equipment} raised then cleared",
            lambda: self.cleared(equipment, alarm_type) == before + 1,
            timeout_s=20,
        )
        newest = self.alarms(equipment, alarm_type)[0]
        assert newest["count"] == 1 and newest["site_id"] == self.site_id

    def raised(self, equipment: str, alarm_type: str, cause: Any) -> dict[str, Any]:
        cause()
        found: dict[str, Any] = wait_for(
            f"{alarm_type} open on {equipment}",
            lambda: next(
                (a for a in self.alarms(equipment, alarm_type) if a["state"] == "active"), None
            ),
            timeout_s=20,
        )
        return found

    def cleared_by(self, equipment: str, alarm_type: str, cause: Any) -> None:
        cause()
        wait_for(
            f"{alarm_type} on {equipment} cleared",
            lambda: all(a["state"] == "cleared" for a in self.alarms(equipment, alarm_type)),
            timeout_s=20,
        )

    def agent(self) -> dict[str, Any]:
        found: dict[str, Any] = self.stack.api("GET", f"/api/v1/sites/{self.site_id}/agent").json()
        return found

    def rejected(self) -> dict[str, int]:
        traps = [x for x in self.agent().get("listeners", []) if x["kind"] == "snmp_traps"]
        return dict(traps[0]["rejected"]) if traps else {}


def test_every_alarm_of_the_devices_raises_and_clears_at_the_collector(
    stack: Stack, peers: Peers
) -> None:
    agent = stack.add_agent(EXAMPLE, rewrite=peers.site)
    noc = Noc(stack, agent.site_id)
    devices = wait_for(
        "the four devices polled, seen in the agent view",
        lambda: (
            (d := {x["device_id"]: x for x in noc.agent().get("devices", [])}).keys()
            == {"ups-min", "ups-full", "ups-w", "rect-1"}
            and all(x["polls_ok"] >= 2 for x in d.values())
            and d
        ),
    )
    # The UPS serving the basic objects only: its optional points are unknown, nothing fails.
    assert devices["ups-min"]["ok"] and devices["ups-full"]["ok"]
    assert devices["ups-min"]["points_unknown"] == [
        "minutes_remaining",
        "charge_remaining",
        "battery_temperature",
        "input_voltage",
    ]
    assert devices["ups-full"]["points_unknown"] == []
    assert noc.alarms("ups-min", "comm_failure") == []
    assert noc.alarms("ups-min", "profile_mismatch") == []

    # Polled points raise and clear (SNMP and Modbus).
    noc.raised("ups-min", "battery_low", lambda: peers.ups_min.set("battery_status", 3))
    noc.cleared_by("ups-min", "battery_low", lambda: peers.ups_min.set("battery_status", 2))
    noc.raised("rect-1", "rectifier_fault", lambda: peers.plant.set("rectifier_fault", True))
    noc.cleared_by("rect-1", "rectifier_fault", lambda: peers.plant.set("rectifier_fault", False))

    # A trap's on_battery is cleared by the next poll reading the UPS back on mains.
    # (The poll reads "normal": only the trap can have raised each of these alarms.)
    noc.raised_then_cleared("ups-min", "on_battery", lambda: peers.snmptrap(*v2c()))
    noc.raised_then_cleared("ups-min", "on_battery", lambda: peers.snmptrap(*v2c(), inform=True))
    noc.raised_then_cleared("ups-full", "on_battery", lambda: peers.snmptrap(*v3("authPriv")))
    # An inform: the UPS learns this agent's engine id first; its own goes in the context.
    noc.raised_then_cleared(
        "ups-full",
        "on_battery",
        lambda: peers.snmptrap(*v3("authPriv", engine=None), "-E", f"0x{ENGINE_FULL}", inform=True),
    )
    watcher = v3("authNoPriv", user=WATCHER, engine="8000000001020304cc")
    noc.raised_then_cleared(
        "ups-w", "on_battery", lambda: peers.snmptrap(*watcher, sender=OTHER_SENDER)
    )
    noc.raised_then_cleared(
        "ups-w",
        "on_battery",
        lambda: peers.snmptrap(
            *v3("authNoPriv", user=WATCHER, engine=None), inform=True, sender=OTHER_SENDER
        ),
    )

    # Below a user's level, or unauthenticated: refused, and the NOC sees how many and why.
    before = sum(noc.rejected().values())
    peers.snmptrap(*v3("authNoPriv"))
    peers.snmptrap(*v3("noAuthNoPriv"))
    rejected = wait_for(
        "two refused traps in the agent view",
        lambda: (r := noc.rejected()) and sum(r.values()) >= before + 2 and r,
    )
    assert any("security level below authPriv" in reason for reason in rejected), rejected
    assert noc.cleared("ups-full", "on_battery") == 2  # nothing more was raised by them

    # Syslog: a Cisco line in RFC 3164 form raises, an RFC 5424 line with structured data
    # clears; IOS's default form (no hostname) raises, ``logger --rfc3164`` clears.
    noc.raised(
        "router-1",
        "hvac_fault",
        lambda: peers.raw_syslog(
            b"<187>Dec  7 01:52:05 router-1 %ENVMON-3-FAN_FAIL: Fan tray 2 FAIL"
        ),
    )
    noc.cleared_by(
        "router-1",
        "hvac_fault",
        lambda: peers.logger(
            "--rfc5424",
            "--sd-id",
            "envmon@9",
            "--sd-param",
            'tray="2"',
            "-t",
            "envmon",
            "%ENVMON-6-FAN_OK: Fan tray 2 OK",
        ),
    )
    noc.raised(
        "router-1",
        "link_down",
        lambda: peers.raw_syslog(
            b"<187>58: *Mar  1 00:15:32.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1,"
            b" changed state to down"
        ),
    )
    noc.cleared_by(
        "router-1",
        "link_down",
        lambda: peers.logger(
            "--rfc3164",
            "-t",
            "relay",
            "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up",
        ),
    )
    wait_for(
        "the four syslog lines counted in the agent view",
        lambda: any(
            x["kind"] == "syslog" and x["accepted"] == 4 and x["rejected"] == {}
            for x in noc.agent()["listeners"]
        ),
    )
