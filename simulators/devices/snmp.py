"""A UPS (or any SNMP profile) served by net-snmp's real ``snmpd``, and traps sent by the real
``snmptrap``.

The served OIDs and their types come from the agent's profile; values live in a JSON file that
a ``pass_persist`` helper reads on every request, so a value set here is what the next GET
sees. Faults: ``silent`` freezes the daemon (SIGSTOP: the port stays open, nothing answers),
``slow`` delays each answer, ``garbage`` answers strings where numbers are expected, ``down``
stops the daemon.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from simulators.devices.faults import Fault
from simulators.processes import spawn
from siteconfig.profiles import EqualsAlarm, SnmpProfile, ThresholdAlarm

SNMPD = "/usr/sbin/snmpd"
COMMUNITY = "shelter-ro"
V3_USER = "upsuser"
V3_AUTH = "auth-pass-123"
V3_PRIV = "priv-pass-456"
# snmpd's own MIB modules for the machine's interfaces would answer the IF-MIB subtrees
# before our values: the simulated device has only the interfaces its values describe.
_NO_BUILTIN = ["-I", "-interfaces,ifTable,ifXTable"]
TABLE_ROWS = 2  # a table point (several battery strings, input lines) gets this many rows

# net-snmp ``pass`` types for the profile's types.
_PASS_TYPES = {
    "integer": "integer",
    "gauge": "gauge",
    "counter": "counter",
    "timeticks": "timeticks",
    "string": "string",
}
# Values a healthy device of a known kind reports; anything else is derived from the alarms.
_KNOWN_NORMAL = {
    "1.3.6.1.2.1.33.1.2.1.0": 2,  # upsBatteryStatus: normal
    "1.3.6.1.2.1.33.1.4.1.0": 3,  # upsOutputSource: normal
    "1.3.6.1.2.1.33.1.2.4.0": 100,  # upsEstimatedChargeRemaining
    "1.3.6.1.2.1.33.1.3.3.1.3": 230,  # upsInputVoltage
    "1.3.6.1.2.1.2.2.1.7": 1,  # ifAdminStatus: up
    "1.3.6.1.2.1.2.2.1.8": 1,  # ifOperStatus: up
}

# A net-snmp ``pass_persist`` helper: one process for the daemon's life (a plain ``pass``
# script costs a Python start per OID, too slow for sub-second timeouts).
_PASS_SCRIPT = """
import json, sys, time
key = lambda o: tuple(int(x) for x in o.split("."))
path = sys.argv[1]
while True:
    command = sys.stdin.readline().strip()
    if not command:
        break
    if command == "PING":
        print("PONG", flush=True)
        continue
    oid = sys.stdin.readline().strip().lstrip(".")
    if command == "set":
        sys.stdin.readline()
        print("not-writable", flush=True)
        continue
    values = json.load(open(path))
    fault = values.pop("__fault__", ["none", 0])
    if fault[0] == "slow":
        time.sleep(fault[1])
    if command == "get":
        found = oid if oid in values else None
    else:
        found = next((o for o in sorted(values, key=key) if key(o) > key(oid)), None)
    if found is None:
        print("NONE", flush=True)
    elif fault[0] == "garbage":
        print("." + found, "string", "#garbage#", sep="\\n", flush=True)
    else:
        print("." + found, values[found][0], values[found][1], sep="\\n", flush=True)
"""


def free_udp_port() -> int:
    """A UDP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def normal_values(profile: SnmpProfile) -> dict[str, tuple[str, str]]:
    """OID -> (pass type, value) of a healthy device: no alarm raised by any point."""
    values: dict[str, tuple[str, str]] = {}
    for point in profile.points.values():
        known = _KNOWN_NORMAL.get(point.oid)
        value = float(known) if known is not None else _healthy(point.alarm)
        raw = str(round((value - point.offset) / point.scale))
        oids = (
            [f"{point.oid}.{row}" for row in range(1, TABLE_ROWS + 1)]
            if point.table
            else [point.oid]
        )
        for oid in oids:
            values[oid] = (_PASS_TYPES[point.type], "" if point.type == "string" else raw)
    return values


def _healthy(alarm: ThresholdAlarm | EqualsAlarm | None) -> float:
    if isinstance(alarm, ThresholdAlarm):
        margin = abs(alarm.raise_at - alarm.clear_at)
        return alarm.clear_at - margin if alarm.direction == "above" else alarm.clear_at + margin
    if isinstance(alarm, EqualsAlarm):
        return next(v for v in range(1, 1000) if v not in alarm.equals)
    return 0.0


class SnmpDeviceSimulator:
    """One snmpd serving ``profile`` on a free loopback UDP port (v2c community and v3 user)."""

    def __init__(
        self,
        profile: SnmpProfile,
        workdir: Path,
        *,
        values: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.profile = profile
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.values_file = workdir / "values.json"
        self._values: dict[str, list[str]] = {
            oid: list(v) for oid, v in (values or normal_values(profile)).items()
        }
        self._fault: list[object] = ["none", 0]
        self._write()
        script = workdir / "snmp_pass.py"
        script.write_text(_PASS_SCRIPT)
        wrapper = workdir / "snmp_pass.sh"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {script} {self.values_file} "$@"\n')
        wrapper.chmod(0o755)
        (workdir / "persist").mkdir(exist_ok=True)
        roots = sorted({_root(p.oid) for p in profile.points.values()})
        self.conf = workdir / "snmpd.conf"
        self.conf.write_text(
            f"rocommunity {COMMUNITY} 127.0.0.1\n"
            f"createUser {V3_USER} SHA {V3_AUTH} AES {V3_PRIV}\n"
            f"rouser {V3_USER} authpriv\n"
            + "".join(f"pass_persist .{r} {wrapper}\n" for r in roots)
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def set(self, oid_or_point: str, value: float | str) -> None:
        """Serve ``value`` from now on for an OID, a point name, or ``point.row`` of a table."""
        for oid in self._oids(oid_or_point):
            self._values[oid][1] = str(value)
        self._write()

    def serve(self, oid: str, kind: str, value: str) -> None:
        """Serve one more object (``kind``: a net-snmp pass type)."""
        self._values[oid] = [kind, value]
        self._write()

    def set_fault(self, fault: Fault | str, *, slow_s: float = 3.0) -> None:
        """Make the agent see a silent, slow, garbled, stopped or healthy device."""
        fault = Fault(fault)
        if fault is Fault.DOWN:
            self.stop()
            return
        if self._proc is None:
            self.start()
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP if fault is Fault.SILENT else signal.SIGCONT)
        self._fault = [fault.value, slow_s] if fault in (Fault.SLOW, Fault.GARBAGE) else ["none", 0]
        self._write()

    def start(self) -> None:
        """Start snmpd and wait until it answers."""
        with (self.workdir / "snmpd.log").open("ab") as log:
            self._proc = spawn(
                [
                    SNMPD,
                    "-f",
                    "-Lo",
                    "-C",
                    "-c",
                    str(self.conf),
                    *_NO_BUILTIN,
                    f"udp:127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
            )
        first = next(iter(self._values))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [
                    "snmpget",
                    "-v2c",
                    "-c",
                    COMMUNITY,
                    "-t",
                    "0.3",
                    "-r",
                    "0",
                    f"127.0.0.1:{self.port}",
                    first,
                ],
                capture_output=True,
                env=self._env(),
                check=False,
            )
            if probe.returncode == 0:
                return
        raise RuntimeError(f"snmpd did not start: {(self.workdir / 'snmpd.log').read_text()}")

    def stop(self) -> None:
        """Stop snmpd (the device goes silent and its port closes)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a frozen daemon cannot act on SIGTERM
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(timeout=5)
            self._proc = None

    def send_trap(
        self,
        *,
        target_port: int,
        trap_oid: str,
        varbinds: Sequence[tuple[str, str, str]] = (),
        version: str = "v2c",
        community: str = "public",
        user: str = V3_USER,
        auth_key: str = V3_AUTH,
        priv_key: str = V3_PRIV,
        engine_id: str = "8000000001020304aa",
        inform: bool = False,
    ) -> None:
        """Send one notification with the real ``snmptrap`` (v2c or v3 authPriv SHA/AES)."""
        target = f"127.0.0.1:{target_port}"
        if version == "v2c":
            auth = ["-v", "2c", "-c", community]
        else:
            auth = ["-v", "3", "-e", f"0x{engine_id.removeprefix('0x')}", "-u", user]
            auth += ["-l", "authPriv", "-a", "SHA", "-A", auth_key, "-x", "AES", "-X", priv_key]
        binds = [part for oid, kind, value in varbinds for part in (oid, kind, value)]
        argv = ["snmptrap", *(["-Ci"] if inform else []), "-t", "1", "-r", "1", *auth]
        done = subprocess.run(
            [*argv, target, "", trap_oid, *binds], capture_output=True, env=self._env(), check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"snmptrap failed: {done.stderr.decode().strip()}")

    @property
    def _address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _oids(self, name: str) -> list[str]:
        if name in self._values:
            return [name]
        point_name, _, row = name.partition(".")
        point = self.profile.points.get(point_name)
        if point is None:
            raise ValueError(f"profile {self.profile.name} has no point or OID {name!r}")
        if not point.table:
            return [point.oid]
        rows = [row] if row else [str(r) for r in range(1, TABLE_ROWS + 1)]
        return [f"{point.oid}.{r}" for r in rows]

    def _write(self) -> None:
        tmp = self.values_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self._values, "__fault__": self._fault}))
        tmp.replace(self.values_file)

    def _env(self) -> dict[str, str]:
        home = str(self.workdir / "persist")
        return {
            **os.environ,
            "SNMP_PERSISTENT_DIR": home,
            "SNMPCONFPATH": home,
            "HOME": home,
            "MIBS": "",
        }


def _root(oid: str) -> str:
    # One pass_persist per MIB subtree (e.g. .1.3.6.1.2.1.33 for UPS-MIB).
    parts = oid.split(".")
    return ".".join(parts[: min(len(parts), 7)])
