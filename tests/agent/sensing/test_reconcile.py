"""A trap-raised alarm reconciled by the poll of the same point, and a syslog-raised one that
expires, through the sensing service: the real net-snmp ``snmpd`` and ``snmptrap``, a real
syslog socket."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.sensing import SensingService
from clocks import SystemClock
from simulators.devices.snmp import COMMUNITY
from siteconfig import SiteConfig, load_profile
from siteconfig.profiles import SnmpProfile
from tests.agent.sensors.recording import RecordingSink, until
from tests.agent.sensors.snmp.fixtures import Snmpd, free_udp_port

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"
UPS_TRAP_ON_BATTERY = "1.3.6.1.2.1.33.2.0.1"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Snmpd, SensingService, RecordingSink]]:
    ups = Snmpd(tmp_path / "snmpd")
    ups.start()
    profile = load_profile(PROFILES / "snmp-ups-mib.yaml")
    assert isinstance(profile, SnmpProfile)
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
                    "host": "127.0.0.1",
                    "port": ups.port,
                    "auth": {"version": "v2c", "community": COMMUNITY},
                    "poll_s": 0.5,
                }
            ],
            "profiles": {"snmp-ups-mib": profile.model_dump()},
            "traps": {"bind": "127.0.0.1", "port": free_udp_port(), "communities": ["public"]},
            "syslog": {
                "bind": "127.0.0.1",
                "port": free_udp_port(),
                "patterns": [
                    {
                        "regex": "FAN_FAIL",
                        "equipment": "router-1",
                        "point": "fan",
                        "alarm_type": "fan_failure",
                        "severity": "major",
                        "transition": "raised",
                        "expire_s": 0.3,
                    }
                ],
            },
        }
    )
    sink = RecordingSink()
    try:
        async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
            await until(lambda: service.device_health()[0].polls_ok >= 1)
            yield ups, service, sink
    finally:
        ups.stop()


async def test_a_trap_raised_on_battery_is_cleared_by_the_next_poll_reading_normal(
    running: tuple[Snmpd, SensingService, RecordingSink],
) -> None:
    ups, service, sink = running
    port = service.listeners.trap_port
    assert port is not None
    ups.send_trap(target_port=port, trap_oid=UPS_TRAP_ON_BATTERY)  # upsTrapOnBattery, v2c
    await until(lambda: sink.of("on_battery") == ["raised"])
    # upsOutputSource still reads normal (3): the next poll clears what the trap raised.
    await until(lambda: sink.of("on_battery") == ["raised", "cleared"], limit_s=3)
    assert sink.transitions[-1].reason.startswith("output_source = 3")


async def test_a_poll_still_in_alarm_keeps_a_trap_raised_alarm_and_clears_it_later(
    running: tuple[Snmpd, SensingService, RecordingSink],
) -> None:
    ups, service, sink = running
    ups.set("output_source", 5)  # on battery, as the trap says
    port = service.listeners.trap_port
    assert port is not None
    await until(lambda: sink.of("on_battery") == ["raised"])
    ups.send_trap(target_port=port, trap_oid=UPS_TRAP_ON_BATTERY)
    await until(lambda: sink.of("on_battery") == ["raised", "raised"])
    polls = service.device_health()[0].polls_ok
    await until(lambda: service.device_health()[0].polls_ok >= polls + 2)
    assert sink.of("on_battery") == ["raised", "raised"]  # still raised: no flapping
    ups.set("output_source", 3)
    await until(lambda: sink.of("on_battery") == ["raised", "raised", "cleared"])


async def test_a_syslog_alarm_with_expire_s_clears_by_itself(
    running: tuple[Snmpd, SensingService, RecordingSink],
) -> None:
    _, service, sink = running
    port = service.listeners.syslog_port
    assert port is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"<187>Dec  7 01:52:05 router-1 envmon: FAN_FAIL tray 2", ("127.0.0.1", port))
    await until(lambda: sink.of("fan_failure") == ["raised"])
    await until(lambda: sink.of("fan_failure") == ["raised", "cleared"], limit_s=2)
    assert "expired" in sink.transitions[-1].reason
