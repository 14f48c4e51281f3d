"""Agent footprint: memory and CPU of the real agent process on a shelter's worth of devices.

Run: ``.venv/bin/python -m benchmarks.agent_footprint`` (5 minutes; ``--duration`` to change).
``--listeners``: the site also listens for SNMP traps (a v2c community and a v3 authPriv user,
so pysnmp's engine and its USM are loaded) and syslog, and receives a v3 trap every
10 s and a syslog line every 5 s from net-snmp's ``snmptrap`` and a UDP socket.

The agent (``shelterwatch agent run``, its own process) reads one Modbus device of 50 registers
every 10 s (a pyModbusTCP simulator), one SNMP device of 30 OIDs every 30 s (net-snmp's snmpd),
and four GPIO contacts toggled now and then (socket pins), and publishes to a real mosquitto
with the real collector acknowledging. Peak RSS is the kernel's high-water mark (VmHWM); CPU is
user + system time of the agent over the measured period (after start-up), as a percentage of
one core. Polls come from the agent's own status socket. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agent.runtime.status import read_status, status_socket_path
from benchmarks._machine import print_machine
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
from siteconfig.profiles import ModbusProfile, SnmpProfile

PROFILES = Path(__file__).resolve().parents[1] / "firmware_config" / "profiles"
MODBUS_POINTS = 50
SNMP_POINTS = 30
SNMP_BASE = "1.3.6.1.4.1.99999.1"  # a private enterprise subtree: nothing else answers there
CONTACTS = ("door", "fire", "hvac_fault", "mains_present")
TRAPS = "1.3.6.1.4.1.99999.2.0"  # .1 raises, .2 clears
ENGINE_ID = "8000000001020304aa"


def _modbus_profile() -> dict[str, Any]:
    points = {
        f"reg{i:02d}": {
            "function": 3,
            "address": i,
            "type": "uint16",
            "scale": 0.1,
            "telemetry": {"period_s": 60, "deadband": 1.0},
        }
        for i in range(MODBUS_POINTS)
    }
    points["reg00"]["alarm"] = {
        "alarm_type": "temp_high",
        "severity": "major",
        "direction": "above",
        "raise_at": 35.0,
        "clear_at": 32.0,
    }
    return {"name": "bench-modbus-50", "kind": "modbus", "points": points}


def _snmp_profile() -> dict[str, Any]:
    points = {
        f"oid{i:02d}": {
            "oid": f"{SNMP_BASE}.{i + 1}.0",
            "type": "integer",
            "telemetry": {"period_s": 60, "deadband": 1},
        }
        for i in range(SNMP_POINTS)
    }
    alarm = {"alarm_type": "on_battery", "severity": "major", "point": "oid00"}
    traps = [
        {"trap_oid": f"{TRAPS}.1", "transition": "raised", **alarm},
        {"trap_oid": f"{TRAPS}.2", "transition": "cleared", **alarm},
    ]
    return {"name": "bench-snmp-30", "kind": "snmp", "points": points, "traps": traps}


def _listeners(trap_port: int, syslog_port: int) -> dict[str, Any]:
    line = {"equipment": "router-1", "point": "fan", "alarm_type": "hvac_fault"}
    return {
        "traps": {
            "bind": "127.0.0.1",
            "port": trap_port,
            "communities": [COMMUNITY],
            "users": [
                {"user": V3_USER, "auth_key": V3_AUTH, "priv_key": V3_PRIV, "engine_id": ENGINE_ID}
            ],
        },
        "syslog": {
            "bind": "127.0.0.1",
            "port": syslog_port,
            "patterns": [
                {"regex": "FAN.*FAIL", "severity": "minor", "transition": "raised", **line},
                {"regex": "FAN.*OK", "severity": "minor", "transition": "cleared", **line},
            ],
        },
    }


def _send_trap(port: int, home: Path, *, raised: bool) -> None:
    argv = [
        "snmptrap", "-v", "3", "-e", f"0x{ENGINE_ID}", "-u", V3_USER, "-l", "authPriv",
        "-a", "SHA", "-A", V3_AUTH, "-x", "AES", "-X", V3_PRIV,
        f"127.0.0.1:{port}", "", f"{TRAPS}.{1 if raised else 2}",
    ]  # fmt: skip
    env = {**os.environ, "MIBS": "", "HOME": str(home), "SNMPCONFPATH": str(home)}
    subprocess.run(argv, check=True, capture_output=True, env=env, timeout=10)


def _send_syslog(port: int, *, raised: bool) -> None:
    text = "FAIL" if raised else "OK"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(
            f"<187>Dec  7 01:52:05 router-1 %ENVMON-3-FAN: Fan tray 2 {text}".encode(),
            ("127.0.0.1", port),
        )


def _site(profiles_dir: Path) -> dict[str, Any]:
    return {
        "agent_id": "bench-agent",
        "site_id": "NRO-LYO-01",
        "site_kind": "nro",
        "region": "Auvergne-Rhone-Alpes",
        "profiles_dir": str(profiles_dir),
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "outbox": {"path": "/tmp/unused.db"},
        "devices": [
            {
                "driver": "gpio",
                "id": "contacts",
                "profile": "gpio-shelter-contacts",
                "pins": {"door": 17, "fire": 27, "hvac_fault": 22, "mains_present": 23},
            },
            {
                "driver": "modbus",
                "id": "env-1",
                "profile": "bench-modbus-50",
                "transport": {"kind": "tcp", "host": "127.0.0.1", "port": 502},
                "poll_s": 10,
            },
            {
                "driver": "snmp",
                "id": "ups-1",
                "profile": "bench-snmp-30",
                "host": "127.0.0.1",
                "auth": {"version": "v2c", "community": COMMUNITY},
                "poll_s": 30,
            },
        ],
    }


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int, field: str = "VmHWM") -> float:
    """``VmHWM`` (the peak) or ``VmRSS`` (now) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(duration_s: float, workdir: Path, *, listeners: bool = False) -> dict[str, Any]:
    """Start everything, measure the agent for ``duration_s``, stop everything."""
    profiles = workdir / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "gpio-shelter-contacts.yaml").write_text(
        (PROFILES / "gpio-shelter-contacts.yaml").read_text()
    )
    (profiles / "bench-modbus-50.yaml").write_text(yaml.safe_dump(_modbus_profile()))
    (profiles / "bench-snmp-30.yaml").write_text(yaml.safe_dump(_snmp_profile()))
    modbus = ModbusDeviceSimulator(ModbusProfile.model_validate(_modbus_profile()))
    modbus.start()
    for i in range(MODBUS_POINTS):
        modbus.set(f"reg{i:02d}", 20.0 + i / 10)
    snmp = SnmpDeviceSimulator(SnmpProfile.model_validate(_snmp_profile()), workdir / "snmpd")
    snmp.start()
    site_file = workdir / "site.yaml"
    trap_port, syslog_port = free_udp_port(), free_udp_port()
    site = _site(profiles) | (_listeners(trap_port, syslog_port) if listeners else {})
    site_file.write_text(yaml.safe_dump(site))
    home = workdir / "net-snmp"
    home.mkdir()

    def point_at_devices(raw: dict[str, Any]) -> dict[str, Any]:
        raw["devices"][1]["transport"]["port"] = modbus.port
        raw["devices"][2]["port"] = snmp.port
        return raw

    stack = Stack(workdir / "stack")
    try:
        stack.broker.start()
        stack.start_collector()
        agent = stack.add_agent(site_file, rewrite=point_at_devices)
        stack.wait_for_gpio(agent.agent_id)
        pid = agent.process.pid
        assert pid is not None
        time.sleep(10)  # start-up (imports, first polls) is not the steady footprint
        cpu_start, wall_start = _cpu_s(pid), time.monotonic()
        toggles = 0
        while time.monotonic() - wall_start < duration_s:
            time.sleep(5)
            contact = CONTACTS[toggles % len(CONTACTS)]
            stack.set_contact(agent.agent_id, contact, alarm=(toggles // len(CONTACTS)) % 2 == 0)
            if listeners:
                _send_syslog(syslog_port, raised=toggles % 2 == 0)
                if toggles % 2 == 0:
                    _send_trap(trap_port, home, raised=toggles % 4 == 0)
            toggles += 1
            if not agent.process.running:
                raise RuntimeError(f"the agent exited:\n{agent.process.tail()}")
        cpu_s, wall = _cpu_s(pid) - cpu_start, time.monotonic() - wall_start
        rss, rss_end = _rss_mib(pid), _rss_mib(pid, "VmRSS")
        status = read_status(status_socket_path(agent.outbox_path))
    finally:
        stack.stop()
        modbus.stop()
        snmp.stop()
    # GPIO contacts are read continuously; the polls the goal is about are Modbus and SNMP.
    devices = [d for d in status["devices"] if d["device_id"] != "contacts"]
    heard = {f"{x['kind']}_accepted": x["accepted"] for x in status.get("listeners", [])} | {
        f"{x['kind']}_rejected": sum(x["rejected"].values()) for x in status.get("listeners", [])
    }
    return {
        "rss_mib": round(rss, 1),
        "rss_end_mib": round(rss_end, 1),
        "cpu_pct_avg": round(100 * cpu_s / wall, 2),
        "polls_ok": sum(d["polls_ok"] for d in devices),
        "polls_failed": sum(d["polls_failed"] for d in devices),
        "contact_changes": toggles,
        "duration_s": round(wall, 1),
        "outbox_pending": status["outbox"]["events_pending"],
        **heard,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="measured seconds")
    parser.add_argument(
        "--listeners", action="store_true", help="also SNMP traps (v2c and v3) and syslog"
    )
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="shelterwatch-footprint-") as tmp:
        result = run(args.duration, Path(tmp), listeners=args.listeners)
    print(
        f"agent: peak RSS {result['rss_mib']} MiB (goal <= 60), CPU {result['cpu_pct_avg']} %"
        f" of one core (goal <= 2), polls ok {result['polls_ok']}, failed"
        f" {result['polls_failed']}",
        flush=True,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
