"""The trap/inform receiver through SensingService, fed by the real net-snmp ``snmptrap``."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.sensing import SensingService
from clocks import SystemClock
from siteconfig import SiteConfig, load_profile
from siteconfig.profiles import SnmpProfile
from tests.agent.sensors.recording import RecordingSink
from tests.agent.sensors.snmp.fixtures import free_udp_port

PROFILES = Path(__file__).resolve().parents[4] / "firmware_config" / "profiles"
UPS_TRAPS = "1.3.6.1.2.1.33.2.0"
ALARM_DESCR = "1.3.6.1.2.1.33.1.6.2.1.2"
ON_BATTERY = "1.3.6.1.2.1.33.1.6.3.2"
ENGINE_ID = "8000000001020304aa"
USER, AUTH, PRIV = "trapper", "trap-auth-key-1", "trap-priv-key-1"


def ups_profile() -> SnmpProfile:
    loaded = load_profile(PROFILES / "snmp-ups-mib.yaml")
    assert isinstance(loaded, SnmpProfile)
    return loaded


class Harness:
    def __init__(self, service: SensingService, sink: RecordingSink, port: int, home: Path) -> None:
        self.service, self.sink, self.port, self.home = service, sink, port, home

    async def snmptrap(self, *args: str) -> int:
        """Run the real CLI; returns its exit status."""
        env = {
            **os.environ,
            "MIBS": "",
            "SNMP_PERSISTENT_DIR": str(self.home),
            "SNMPCONFPATH": str(self.home),
            "HOME": str(self.home),
        }
        proc = await asyncio.create_subprocess_exec(
            "snmptrap",
            "-t",
            "1",
            "-r",
            "0",
            *args,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        self.stderr = err.decode()
        return await proc.wait()

    def v2c(self, community: str = "public") -> list[str]:
        return ["-v", "2c", "-c", community, f"127.0.0.1:{self.port}", ""]

    def v3(self, engine_id: str = ENGINE_ID, priv: str = PRIV) -> list[str]:
        return [
            "-v", "3", "-e", f"0x{engine_id}", "-u", USER, "-l", "authPriv",
            "-a", "SHA", "-A", AUTH, "-x", "AES", "-X", priv,
            f"127.0.0.1:{self.port}", "",
        ]  # fmt: skip

    async def until(self, predicate: Any) -> None:
        for _ in range(150):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not met in time")

    def seen(self) -> list[tuple[str, str, str, str]]:
        return [
            (t.equipment_id, t.point, t.alarm_type, t.transition.value)
            for t in self.sink.transitions
        ]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    port = free_udp_port()
    config = SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "nro",
            "devices": [
                {
                    "driver": "snmp",
                    "id": "ups-1",
                    "profile": "snmp-ups-mib",
                    # Nothing answers polls here: only the traps matter (comm failure is slow).
                    "host": "127.0.0.1",
                    "port": free_udp_port(),
                    "auth": {"version": "v2c", "community": "public"},
                    "poll_s": 60,
                    "comm_failure_after": 10,
                }
            ],
            "profiles": {"snmp-ups-mib": ups_profile().model_dump()},
            "traps": {
                "bind": "127.0.0.1",
                "port": port,
                "communities": ["public"],
                "users": [
                    {"user": USER, "auth_key": AUTH, "priv_key": PRIV, "engine_id": ENGINE_ID}
                ],
            },
        }
    )
    sink = RecordingSink()
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
        yield Harness(service, sink, port, tmp_path)


async def test_v2c_trap_raises_the_mapped_alarm(harness: Harness) -> None:
    assert await harness.snmptrap(*harness.v2c(), f"{UPS_TRAPS}.1") == 0
    await harness.until(lambda: harness.seen())
    assert harness.seen() == [("ups-1", "output_source", "on_battery", "raised")]
    assert harness.service.traps_rejected() == 0


async def test_v3_authpriv_trap_with_a_varbind_condition(harness: Harness) -> None:
    args = [ALARM_DESCR + ".1", "o", ON_BATTERY]
    assert await harness.snmptrap(*harness.v3(), f"{UPS_TRAPS}.3", *args) == 0, harness.stderr
    assert await harness.snmptrap(*harness.v3(), f"{UPS_TRAPS}.4", *args) == 0
    await harness.until(lambda: len(harness.seen()) == 2)
    assert harness.seen() == [
        ("ups-1", "output_source", "on_battery", "raised"),
        ("ups-1", "output_source", "on_battery", "cleared"),
    ]


async def test_v2c_inform_is_acknowledged_and_mapped(harness: Harness) -> None:
    # snmptrap -Ci waits for the response: exit status 0 means the receiver acknowledged.
    assert await harness.snmptrap("-Ci", *harness.v2c(), f"{UPS_TRAPS}.1") == 0, harness.stderr
    assert harness.seen() == [("ups-1", "output_source", "on_battery", "raised")]


async def test_v3_inform_is_acknowledged_and_mapped(harness: Harness) -> None:
    args = harness.v3()
    args = args[:2] + args[4:]  # no -e: the sender discovers our engine id
    assert await harness.snmptrap("-Ci", *args, f"{UPS_TRAPS}.1") == 0, harness.stderr
    assert harness.seen() == [("ups-1", "output_source", "on_battery", "raised")]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("community", "unknown community"),
        ("engine", "unknown user or engine id"),
        ("priv", "wrong privacy key"),
        ("unmapped", "unmapped trap oid 1.3.6.1.2.1.33.2.0.2"),
    ],
)
async def test_rejected_traps_are_counted_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture, kind: str, reason: str
) -> None:
    # Refused by the protocol (the driver) or meaning nothing here (evaluation, in sensing).
    caplog.set_level(logging.WARNING, logger="agent")
    args = {
        "community": [*harness.v2c("not-public"), f"{UPS_TRAPS}.1"],
        "engine": [*harness.v3(engine_id="80000000010203ffff"), f"{UPS_TRAPS}.1"],
        "priv": [*harness.v3(priv="wrong-priv-key"), f"{UPS_TRAPS}.1"],
        "unmapped": [*harness.v2c(), f"{UPS_TRAPS}.2"],
    }[kind]
    assert await harness.snmptrap(*args) == 0
    await harness.until(lambda: harness.service.traps_rejected() == 1)
    assert harness.seen() == []
    assert f"snmp trap from 127.0.0.1 rejected: {reason}" in caplog.text
    # A good trap afterwards still goes through: one bad source does not wedge the receiver.
    assert await harness.snmptrap(*harness.v2c(), f"{UPS_TRAPS}.1") == 0
    await harness.until(lambda: harness.seen())
    assert harness.service.traps_rejected() == 1


async def test_an_undecodable_datagram_is_counted_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.sensors.snmp.traps")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x30\x03not snmp at all", ("127.0.0.1", harness.port))
    await harness.until(lambda: harness.service.traps_rejected() == 1)
    assert "snmp trap from 127.0.0.1 rejected: undecodable" in caplog.text
