"""A reload of the sensing service as one transaction (a real Modbus server, real sockets):
a comm_failure raised before the reload is cleared by the restarted device, a removed device
clears its alarms, and a reload that cannot bind its listeners changes nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pyModbusTCP.server import ModbusServer

from agent.sensing import SensingService
from clocks import SystemClock
from simulators.broker import free_port
from siteconfig import SiteConfig
from tests.agent.sensing.test_pollers import _env_site
from tests.agent.sensors.recording import RecordingSink, until
from tests.agent.sensors.snmp.fixtures import free_udp_port


@pytest.fixture
def server() -> Iterator[ModbusServer]:
    srv = ModbusServer(host="127.0.0.1", port=free_port(), no_block=True)
    srv.start()
    srv.data_bank.set_holding_registers(0, [215, 400])  # 21.5 degC, 40.0 %
    yield srv
    srv.stop()


def _with(config: SiteConfig, **changes: Any) -> SiteConfig:
    raw = config.model_dump()
    raw.update(changes)
    return SiteConfig.model_validate(raw)


def _syslog(port: int) -> dict[str, Any]:
    return {
        "bind": "127.0.0.1",
        "port": port,
        "patterns": [
            {
                "regex": "FAN_FAIL",
                "equipment": "router-1",
                "point": "fan",
                "alarm_type": "fan_failure",
                "severity": "major",
                "transition": "raised",
                "expire_s": 3600,
            }
        ],
    }


async def test_a_comm_failure_raised_before_a_reload_is_cleared_by_the_restarted_device(
    server: ModbusServer,
) -> None:
    sink = RecordingSink()
    dead = _env_site(free_port())
    raw = dead.model_dump()
    raw["devices"][0].update(comm_failure_after=1, retries=0, backoff_max_s=0.1)
    dead = SiteConfig.model_validate(raw)
    async with SensingService(config=dead, sink=sink, clock=SystemClock()) as service:
        await until(lambda: sink.of("comm_failure") == ["raised"])
        raw["devices"][0]["transport"]["port"] = server.port  # the technician fixes the port
        await service.reload(SiteConfig.model_validate(raw))
        await until(lambda: sink.of("comm_failure") == ["raised", "cleared"])


async def test_a_removed_device_clears_its_alarms(server: ModbusServer) -> None:
    sink = RecordingSink()
    config = _env_site(server.port)
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
        server.data_bank.set_holding_registers(0, [360])  # 36.0 degC
        await until(lambda: sink.of("temp_high") == ["raised"])
        await service.reload(_with(config, devices=[]))
        assert sink.of("temp_high") == ["raised", "cleared"]
        assert "removed from the site file" in sink.transitions[-1].reason
        assert service.device_health() == []


async def test_a_reload_that_cannot_bind_changes_nothing(server: ModbusServer) -> None:
    sink = RecordingSink()
    config = _with(_env_site(server.port), syslog=_syslog(free_udp_port()))
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
        port = service.listeners.syslog_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind(("127.0.0.1", 0))
            taken = squatter.getsockname()[1]
            moved = _with(config, syslog=_syslog(taken), devices=[])
            with pytest.raises(OSError):
                await service.reload(moved)
        # Still the old configuration: the device polls, the old port listens.
        assert [h.device_id for h in service.device_health()] == ["env-1"]
        assert service.listeners.syslog_port == port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(
                b"<187>Dec  7 01:52:05 router-1 app: FAN_FAIL tray 2", ("127.0.0.1", port)
            )
        await until(lambda: sink.of("fan_failure") == ["raised"])


async def test_a_syslog_listener_rebound_on_its_own_port_works(server: ModbusServer) -> None:
    # The bug this guards: the old socket was closed a loop turn too late (EADDRINUSE).
    sink = RecordingSink()
    port = free_udp_port()
    config = _with(_env_site(server.port), syslog=_syslog(port))
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
        other = _syslog(port)
        other["bind"] = "0.0.0.0"  # another socket on the same port: the old one must go first
        await service.reload(_with(config, syslog=other))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"<187>Dec  7 01:52:05 router-1 app: FAN_FAIL", ("127.0.0.1", port))
        await until(lambda: sink.of("fan_failure") == ["raised"])
