"""The device simulators as the agent's real drivers see them: values set by point name come
back decoded, and each injected fault is a failed read, not a wrong value."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sensors import DeviceError, ModbusReader
from agent.sensors.modbus_codec import decode_registers
from agent.sensors.snmp import SnmpReader
from simulators.devices.faults import Fault
from simulators.devices.modbus import ModbusDeviceSimulator, SimulatorError, encode_point
from simulators.devices.rtu import crc16
from simulators.devices.snmp import COMMUNITY, SnmpDeviceSimulator
from siteconfig.profiles import ModbusPoint, ModbusProfile, SnmpProfile
from siteconfig.site import ModbusDevice, SnmpDevice, load_profile

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"


def _profile(name: str) -> Any:
    return load_profile(PROFILES / f"{name}.yaml")


@pytest.fixture
def plant() -> Iterator[ModbusDeviceSimulator]:
    profile = _profile("modbus-dc-power-plant")
    assert isinstance(profile, ModbusProfile)
    simulator = ModbusDeviceSimulator(profile, slow_s=1.0)
    simulator.start()
    yield simulator
    simulator.stop()


def _modbus_reader(simulator: ModbusDeviceSimulator) -> ModbusReader:
    device = ModbusDevice.model_validate(
        {
            "driver": "modbus",
            "id": "power-1",
            "profile": simulator.profile.name,
            "transport": {"kind": "tcp", "host": "127.0.0.1", "port": simulator.port},
            "timeout_s": 0.4,
            "retries": 0,
        }
    )
    return ModbusReader(device, simulator.profile)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["int16", "uint16", "int32", "uint32", "float32"]),
    word_order=st.sampled_from(["big", "little"]),
    byte_order=st.sampled_from(["big", "little"]),
    raw=st.integers(min_value=0, max_value=30000),
)
def test_encoding_is_the_inverse_of_the_agents_decoding(
    kind: str, word_order: str, byte_order: str, raw: int
) -> None:
    point = ModbusPoint.model_validate(
        {"function": 3, "address": 0, "type": kind, "word_order": word_order,
         "byte_order": byte_order, "scale": 0.1, "offset": -5.0}
    )  # fmt: skip
    value = raw * 0.1 - 5.0
    assert decode_registers(point, encode_point(point, value)) == pytest.approx(value, abs=1e-3)


def test_a_value_out_of_range_is_refused_with_its_type() -> None:
    point = ModbusPoint.model_validate({"function": 3, "address": 0, "type": "uint16"})
    with pytest.raises(SimulatorError, match="uint16"):
        encode_point(point, -1)


async def test_the_agent_reads_what_the_simulator_holds(plant: ModbusDeviceSimulator) -> None:
    plant.set("battery_voltage", 47.5)
    plant.set("load_current", 12.25)
    plant.set("mains_present", False)
    plant.set("on_battery", True)
    reader = _modbus_reader(plant)
    try:
        values = await reader.read()
    finally:
        reader.close()
    assert values["battery_voltage"] == pytest.approx(47.5)
    assert values["load_current"] == pytest.approx(12.25)
    assert values["mains_present"] is False
    assert values["on_battery"] is True
    # The bit field sits in a word by itself: bit 0 set, nothing else.
    assert plant.words(3, 10, 1) == [0x0001]


@pytest.mark.parametrize("fault", [Fault.SILENT, Fault.GARBAGE, Fault.SLOW, Fault.DOWN])
async def test_each_fault_is_a_failed_read_then_the_device_recovers(
    plant: ModbusDeviceSimulator, fault: Fault
) -> None:
    plant.set("battery_voltage", 53.0)
    reader = _modbus_reader(plant)
    try:
        plant.set_fault(fault)
        with pytest.raises(DeviceError):
            await reader.read()
        plant.set_fault(Fault.NONE)
        reader.close()  # a real agent reconnects after a failed poll; so does this reader
        reader = _modbus_reader(plant)
        assert (await reader.read())["battery_voltage"] == pytest.approx(53.0)
    finally:
        reader.close()


def test_an_unknown_point_names_the_profile_and_its_points(plant: ModbusDeviceSimulator) -> None:
    with pytest.raises(SimulatorError, match=r"modbus-dc-power-plant.*battery_voltage"):
        plant.set("battery_volts", 50)


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[SnmpDeviceSimulator]:
    profile = _profile("snmp-ups-mib")
    assert isinstance(profile, SnmpProfile)
    simulator = SnmpDeviceSimulator(profile, tmp_path / "ups")
    simulator.start()
    yield simulator
    simulator.stop()


def _snmp_reader(simulator: SnmpDeviceSimulator) -> SnmpReader:
    device = SnmpDevice.model_validate(
        {
            "driver": "snmp",
            "id": "ups-1",
            "profile": simulator.profile.name,
            "host": "127.0.0.1",
            "port": simulator.port,
            "auth": {"version": "v2c", "community": COMMUNITY},
            "timeout_s": 0.5,
            "retries": 0,
        }
    )
    return SnmpReader(device, simulator.profile)


async def test_a_healthy_ups_raises_nothing_and_values_follow_the_simulator(
    ups: SnmpDeviceSimulator,
) -> None:
    reader = _snmp_reader(ups)
    try:
        healthy = await reader.read()
        assert healthy["output_source"] == 3 and healthy["battery_status"] == 2
        assert healthy["minutes_remaining"] > 15  # above the autonomy alarm's clear level
        ups.set("output_source", 5)
        ups.set("input_voltage.2", 0)
        changed = await reader.read()
        assert changed["output_source"] == 5
        assert changed["input_voltage.1"] == 230 and changed["input_voltage.2"] == 0
        for fault in (Fault.SILENT, Fault.GARBAGE, Fault.DOWN):
            ups.set_fault(fault)
            with pytest.raises(DeviceError):
                await reader.read()
            ups.set_fault(Fault.NONE)
            assert (await reader.read())["output_source"] == 5
    finally:
        reader.close()


def test_the_rtu_crc_matches_the_specifications_worked_example() -> None:
    # Modbus over serial line v1.02: "read holding register 0 x1 of unit 1" ends 0x84 0x0A.
    assert crc16(bytes.fromhex("010300000001")) == bytes.fromhex("840a")


@pytest.fixture
def rtu_plant() -> Iterator[ModbusDeviceSimulator]:
    profile = _profile("modbus-dc-power-plant")
    assert isinstance(profile, ModbusProfile)
    simulator = ModbusDeviceSimulator(profile, slow_s=1.0, rtu=True)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.mark.parametrize("fault", [Fault.SILENT, Fault.GARBAGE, Fault.SLOW])
async def test_the_agent_reads_a_device_over_rtu_on_a_pseudo_terminal(
    rtu_plant: ModbusDeviceSimulator, fault: Fault
) -> None:
    rtu_plant.set("battery_voltage", 51.5)
    rtu_plant.set("mains_present", True)
    device = ModbusDevice.model_validate(
        {
            "driver": "modbus",
            "id": "power-1",
            "profile": rtu_plant.profile.name,
            "transport": {"kind": "rtu", "port": rtu_plant.serial_port, "baudrate": 19200},
            "unit_id": 3,
            "timeout_s": 0.5,
            "retries": 0,
        }
    )
    reader = ModbusReader(device, rtu_plant.profile)
    try:
        values = await reader.read()
        assert values["battery_voltage"] == pytest.approx(51.5)
        assert values["mains_present"] is True
        rtu_plant.set_fault(fault)
        with pytest.raises(DeviceError):
            await reader.read()
        rtu_plant.set_fault(Fault.NONE)
        await asyncio.sleep(1.2)  # let a slow answer still on the line drain away
        reader.close()
        reader = ModbusReader(device, rtu_plant.profile)
        assert (await reader.read())["battery_voltage"] == pytest.approx(51.5)
    finally:
        reader.close()
