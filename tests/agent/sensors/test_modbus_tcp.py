"""The Modbus driver against another implementation's server (pyModbusTCP), filled with
literal hand-computed words, so byte and word order are really checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyModbusTCP.server import ModbusServer

from agent.sensing import SensingService
from agent.sensors import DeviceError, ModbusReader
from clocks import SystemClock
from simulators.broker import free_port
from siteconfig.profiles import ModbusProfile
from siteconfig.site import ModbusDevice, load_profile
from tests.agent.sensors.recording import RecordingSink, until

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"


@pytest.fixture
def server() -> Iterator[ModbusServer]:
    srv = ModbusServer(host="127.0.0.1", port=free_port(), no_block=True)
    srv.start()
    # DC plant: mains present, no rectifier fault; 53.5 V (0x4256 0x0000) and 12.25 A
    # (0x4144 0x0000) as float32 ABCD; status word with bit 0 clear.
    srv.data_bank.set_discrete_inputs(0, [True, False])
    srv.data_bank.set_input_registers(100, [0x4256, 0x0000, 0x4144, 0x0000])
    srv.data_bank.set_holding_registers(10, [0x0000])
    # Environment: 23.4 degC = 234 = 0x00EA, 45.0 % = 450 = 0x01C2.
    srv.data_bank.set_holding_registers(0, [0x00EA, 0x01C2])
    yield srv
    srv.stop()


def device(port: int, profile: str, **kw: Any) -> ModbusDevice:
    return ModbusDevice.model_validate(
        {
            "driver": "modbus",
            "id": profile.split("-")[1],
            "profile": profile,
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
            "timeout_s": 0.5,
            "poll_s": 0.05,
            "retries": 0,
            "comm_failure_after": 2,
            "backoff_max_s": 0.1,
            **kw,
        }
    )


def profile(name: str) -> ModbusProfile:
    loaded = load_profile(PROFILES / f"{name}.yaml")
    assert isinstance(loaded, ModbusProfile)
    return loaded


async def test_reads_every_point_of_the_shipped_profiles(server: ModbusServer) -> None:
    plant = ModbusReader(
        device(server.port, "modbus-dc-power-plant"), profile("modbus-dc-power-plant")
    )
    env = ModbusReader(device(server.port, "modbus-env-sensor"), profile("modbus-env-sensor"))
    try:
        assert await plant.read() == {
            "mains_present": True,
            "rectifier_fault": False,
            "battery_voltage": 53.5,
            "load_current": 12.25,
            "on_battery": False,
        }
        values = await env.read()
        assert values["temperature"] == pytest.approx(23.4)
        assert values["humidity"] == pytest.approx(45.0)
        assert len(env.blocks) == 1  # temperature, humidity and temperature_low: one request
    finally:
        plant.close()
        env.close()


async def test_a_stopped_server_is_a_device_error(server: ModbusServer) -> None:
    reader = ModbusReader(device(server.port, "modbus-env-sensor"), profile("modbus-env-sensor"))
    server.stop()
    with pytest.raises(DeviceError, match=f"127.0.0.1:{server.port}"):
        await reader.read()
    reader.close()


async def test_a_threshold_and_a_dead_device_through_sensing(server: ModbusServer) -> None:
    """The driver's values reach evaluation: past the threshold raised, past the hysteresis
    bound cleared (the band and the delays are checked at their exact boundaries in
    ``tests/agent/evaluation``); a server gone raises comm_failure, back clears it."""
    from siteconfig import SiteConfig

    env_profile = profile("modbus-env-sensor")
    fast = env_profile.model_copy(
        update={
            "points": {
                name: p.model_copy(
                    update={
                        "alarm": p.alarm.model_copy(update={"raise_delay_s": 0})
                        if p.alarm
                        else None
                    }
                )
                for name, p in env_profile.points.items()
            }
        }
    )
    dev = device(server.port, "modbus-env-sensor")
    config = SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "pm",
            "devices": [dev.model_dump()],
            "profiles": {"modbus-env-sensor": fast.model_dump()},
        }
    )
    sink = RecordingSink()
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as sensing:
        await until(lambda: len(sink.batches) >= 2)  # first values always sent
        server.data_bank.set_holding_registers(0, [360])  # 36.0: above 35
        await until(lambda: any(t.alarm_type == "temp_high" for t in sink.transitions))
        server.data_bank.set_holding_registers(0, [310])  # 31.0: below 32, cleared
        await until(lambda: len([t for t in sink.transitions if t.alarm_type == "temp_high"]) == 2)
        server.stop()
        await until(lambda: any(t.alarm_type == "comm_failure" for t in sink.transitions))
        server.start()
        await until(
            lambda: (
                [t.transition.value for t in sink.transitions if t.alarm_type == "comm_failure"]
                == ["raised", "cleared"]
            )
        )
        (health,) = sensing.device_health()
        # The failed polls before comm_failure (two) are counted, and the good ones around them.
        assert health.polls_failed >= 2 and health.polls_ok >= 3
        assert health.consecutive_failures == 0
