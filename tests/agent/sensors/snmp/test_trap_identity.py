"""Who sent a trap, and at which security level: SNMPv3 traps matched to a device by engine id
and user, v2c ones by address and community; a user's configured security level is the minimum
accepted; an inform sender's engine-id discovery is no rejection. Real net-snmp ``snmptrap``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.sensing import SensingService
from clocks import SystemClock
from siteconfig import SiteConfig
from tests.agent.sensors.recording import RecordingSink
from tests.agent.sensors.snmp.fixtures import free_udp_port
from tests.agent.sensors.snmp.test_traps import AUTH, PRIV, UPS_TRAPS, USER, Harness, ups_profile

ENGINE_A, ENGINE_B, ENGINE_W = "8000000001020304aa", "8000000001020304bb", "8000000001020304cc"
WATCHER = "watcher"  # an authNoPriv user


def _v3(device_id: str, engine_id: str, user: str = USER) -> dict[str, Any]:
    return {
        "driver": "snmp",
        "id": device_id,
        "profile": "snmp-ups-mib",
        "host": "127.0.0.1",  # both behind one address (a NAT, a proxy)
        "port": free_udp_port(),
        "auth": {
            "version": "v3",
            "user": user,
            "auth_key": AUTH,
            "priv_key": PRIV,
            "engine_id": engine_id,
        },
        "poll_s": 60,
        "comm_failure_after": 10,
    }


def _v2c(device_id: str, community: str) -> dict[str, Any]:
    return {
        "driver": "snmp",
        "id": device_id,
        "profile": "snmp-ups-mib",
        "host": "127.0.0.1",
        "port": free_udp_port(),
        "auth": {"version": "v2c", "community": community},
        "poll_s": 60,
        "comm_failure_after": 10,
    }


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    port = free_udp_port()
    config = SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "nro",
            "devices": [
                _v3("ups-a", ENGINE_A),
                _v3("ups-b", ENGINE_B),
                _v2c("ups-c", "comm-c"),
                _v2c("ups-d", "comm-d"),
                _v3("ups-w", ENGINE_W, user=WATCHER),
            ],
            "profiles": {"snmp-ups-mib": ups_profile().model_dump()},
            "traps": {
                "bind": "127.0.0.1",
                "port": port,
                "communities": ["comm-c", "comm-d"],
                "users": [
                    {"user": USER, "auth_key": AUTH, "priv_key": PRIV, "engine_id": ENGINE_A},
                    {"user": USER, "auth_key": AUTH, "priv_key": PRIV, "engine_id": ENGINE_B},
                    {
                        "user": WATCHER,
                        "security_level": "authNoPriv",
                        "auth_key": AUTH,
                        "engine_id": ENGINE_W,
                    },
                ],
            },
        }
    )
    sink = RecordingSink()
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
        yield Harness(service, sink, port, tmp_path)


def _level(harness: Harness, level: str, engine_id: str, user: str = USER) -> list[str]:
    args = ["-v", "3", "-e", f"0x{engine_id}", "-u", user, "-l", level, "-a", "SHA", "-A", AUTH]
    if level == "authPriv":
        args += ["-x", "AES", "-X", PRIV]
    return [*args, f"127.0.0.1:{harness.port}", ""]


async def test_v3_traps_are_matched_by_engine_id_and_user(harness: Harness) -> None:
    assert await harness.snmptrap(*_level(harness, "authPriv", ENGINE_B), f"{UPS_TRAPS}.1") == 0
    assert await harness.snmptrap(*_level(harness, "authPriv", ENGINE_A), f"{UPS_TRAPS}.1") == 0
    await harness.until(lambda: len(harness.seen()) == 2)
    assert [e for e, *_ in harness.seen()] == ["ups-b", "ups-a"]


async def test_v2c_traps_are_matched_by_address_and_community(harness: Harness) -> None:
    # Five devices behind 127.0.0.1: the community the v2c ones are polled with decides.
    for community in ("comm-d", "comm-c"):
        v2c = ["-v", "2c", "-c", community, f"127.0.0.1:{harness.port}", ""]
        assert await harness.snmptrap(*v2c, f"{UPS_TRAPS}.1") == 0
    await harness.until(lambda: len(harness.seen()) == 2)
    assert [e for e, *_ in harness.seen()] == ["ups-d", "ups-c"]


async def test_an_authnopriv_trap_for_an_authpriv_user_is_rejected(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agent")
    assert await harness.snmptrap(*_level(harness, "authNoPriv", ENGINE_A), f"{UPS_TRAPS}.1") == 0
    await harness.until(lambda: harness.service.traps_rejected() == 1)
    assert harness.seen() == []
    assert "rejected: security level below authPriv for trapper" in caplog.text


async def test_an_authnopriv_user_is_accepted_at_its_level(harness: Harness) -> None:
    args = _level(harness, "authNoPriv", ENGINE_W, user=WATCHER)
    assert await harness.snmptrap(*args, f"{UPS_TRAPS}.1") == 0
    await harness.until(lambda: harness.seen())
    assert harness.seen()[0][0] == "ups-w"
    assert harness.service.traps_rejected() == 0


async def test_a_v3_inform_discovery_is_not_a_rejection(harness: Harness) -> None:
    args = _level(harness, "authPriv", ENGINE_A)
    # No -e: the sender discovers our engine id (authoritative for an inform); it names its own
    # as the context engine id, which is how it is told apart.
    args = [*args[:2], "-E", f"0x{ENGINE_A}", *args[4:]]
    assert await harness.snmptrap("-Ci", *args, f"{UPS_TRAPS}.1") == 0, harness.stderr
    await harness.until(lambda: harness.seen())
    assert harness.service.traps_rejected() == 0
