"""Listener health: each listener's bound address and what it received, accepted and rejected
by reason, across a reload that moves it, as the heartbeat and ``agent check`` show it. Real
``snmptrap`` and syslog datagrams."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.runtime.check import render, warnings
from agent.sensing import SensingService
from clocks import SystemClock
from protocol import ListenerHealth
from siteconfig import SiteConfig
from tests.agent.sensors.recording import RecordingSink
from tests.agent.sensors.snmp.fixtures import free_udp_port
from tests.agent.sensors.snmp.test_traps import UPS_TRAPS, Harness, ups_profile


def _config(trap_port: int, syslog_port: int) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "nro",
            "devices": [
                {
                    "driver": "snmp",
                    "id": "ups-1",
                    "profile": "snmp-ups-mib",
                    "host": "127.0.0.1",
                    "port": free_udp_port(),
                    "auth": {"version": "v2c", "community": "public"},
                    "poll_s": 60,
                    "comm_failure_after": 10,
                }
            ],
            "profiles": {"snmp-ups-mib": ups_profile().model_dump()},
            "traps": {"bind": "127.0.0.1", "port": trap_port, "communities": ["public"]},
            "syslog": {
                "bind": "127.0.0.1",
                "port": syslog_port,
                "patterns": [
                    {
                        "regex": "FAN_FAIL",
                        "equipment": "router-1",
                        "point": "fan",
                        "alarm_type": "fan_failure",
                        "severity": "major",
                        "transition": "raised",
                        "expire_s": 600,
                    }
                ],
            },
        }
    )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    port = free_udp_port()
    sink = RecordingSink()
    config = _config(port, free_udp_port())
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
        yield Harness(service, sink, port, tmp_path)


def _by_kind(harness: Harness) -> dict[str, ListenerHealth]:
    return {h.kind: h for h in harness.service.listener_health()}


def _syslog(port: int, *lines: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for line in lines:
            sender.sendto(line, ("127.0.0.1", port))


async def test_each_listener_counts_by_reason_across_a_reload(harness: Harness) -> None:
    v2c = ["-v", "2c", "-c", "public", f"127.0.0.1:{harness.port}", ""]
    assert await harness.snmptrap(*v2c, f"{UPS_TRAPS}.1") == 0  # accepted
    assert await harness.snmptrap(*v2c, f"{UPS_TRAPS}.2") == 0  # unmapped
    bad = ["-v", "2c", "-c", "wrong", f"127.0.0.1:{harness.port}", ""]
    assert await harness.snmptrap(*bad, f"{UPS_TRAPS}.1") == 0  # unknown community
    syslog_port = _by_kind(harness)["syslog"].port
    _syslog(syslog_port, b"<187>Dec  7 01:52:05 router-1 envmon: FAN_FAIL", b"garbage")
    await harness.until(lambda: _by_kind(harness)["syslog"].received == 2)
    await harness.until(lambda: _by_kind(harness)["snmp_traps"].received == 3)
    traps, syslog = _by_kind(harness)["snmp_traps"], _by_kind(harness)["syslog"]
    assert (traps.bind, traps.port, traps.accepted) == ("127.0.0.1", harness.port, 1)
    assert traps.rejected == {"unknown community": 1, "unmapped trap oid": 1}
    assert (syslog.accepted, syslog.rejected) == (1, {"not a syslog message": 1})

    # A reload moving the syslog port: the counts go on, the address is the new one.
    moved = free_udp_port()
    await harness.service.reload(_config(harness.port, moved))
    _syslog(moved, b"garbage again")
    await harness.until(lambda: _by_kind(harness)["syslog"].received == 3)
    syslog = _by_kind(harness)["syslog"]
    assert (syslog.port, syslog.rejected) == (moved, {"not a syslog message": 2})

    # As agent check shows them.
    status: dict[str, Any] = {
        "listeners": [h.model_dump(mode="json") for h in harness.service.listener_health()],
        "clock_synced": True,
    }
    assert (
        "snmp_traps listener on 127.0.0.1:"
        f"{harness.port} rejected 2 (unknown community: 1, unmapped trap oid: 1)"
    ) in " ".join(warnings(status))
    screen = render(_screen(status))
    assert f"syslog      127.0.0.1:{moved}" in screen
    assert "2 (not a syslog message: 2)" in screen


def _screen(listeners: dict[str, Any]) -> dict[str, Any]:
    """A check status around the listeners (the rest as an idle agent's)."""
    return {
        "agent_id": "t1", "site_id": "S1", "boot": 1, "agent_version": "0", "config_hash": "h",
        "clock_synced": True, "now": "2026-12-07T00:00:00+00:00", "broker_connected": True,
        "collector_up": True,
        "outbox": {"events_pending": 0, "telemetry_pending": 0, "oldest_unacked_age_s": None,
                   "thinned_total": 0, "critical": False, "recovered": False},
        "devices": [], "points": [], **listeners,
    }  # fmt: skip
