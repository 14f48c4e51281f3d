"""Profiles describe points, not all-or-nothing devices: the shipped UPS-MIB profile against a
real net-snmp ``snmpd`` serving only the RFC 1628 basic objects, one missing a required object,
and one serving them all. An object a UPS does not serve is an unknown point; a missing
required one raises one ``profile_mismatch``; ``comm_failure`` is for a UPS that does not
answer at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from pyModbusTCP.server import DataBank, ModbusServer

from agent.evaluation import ServedEvaluator
from agent.sensing import SensingService
from clocks import ManualClock, SystemClock
from protocol import Transition
from simulators.broker import free_port
from simulators.devices.snmp import COMMUNITY
from simulators.devices.snmp import SnmpDeviceSimulator as Ups
from siteconfig import SiteConfig, load_profile
from siteconfig.profiles import SnmpProfile
from tests.agent.sensors.recording import RecordingSink, until
from tests.agent.sensors.snmp.fixtures import UPS, UPS_VALUES

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"
SECONDS_ON_BATTERY = f"{UPS}.1.2.2.0"
OUTPUT_SOURCE = f"{UPS}.1.4.1.0"
# What RFC 1628's basic groups make mandatory, of what the profile reads.
BASIC = {
    f"{UPS}.1.2.1.0": ("integer", "2"),  # upsBatteryStatus normal
    SECONDS_ON_BATTERY: ("integer", "0"),
    OUTPUT_SOURCE: ("integer", "3"),  # upsOutputSource normal
    f"{UPS}.1.6.1.0": ("gauge", "0"),  # upsAlarmsPresent
}
OPTIONAL_POINTS = ["minutes_remaining", "charge_remaining", "battery_temperature", "input_voltage"]


def ups_profile() -> SnmpProfile:
    loaded = load_profile(PROFILES / "snmp-ups-mib.yaml")
    assert isinstance(loaded, SnmpProfile)
    return loaded


def _site(port: int) -> SiteConfig:
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
                    "port": port,
                    "auth": {"version": "v2c", "community": COMMUNITY},
                    "poll_s": 0.1,
                    "timeout_s": 0.5,
                    "comm_failure_after": 1,
                }
            ],
            "profiles": {"snmp-ups-mib": ups_profile().model_dump()},
        }
    )


async def _running(
    tmp_path: Path, values: Mapping[str, tuple[str, str]]
) -> AsyncIterator[tuple[Ups, SensingService, RecordingSink]]:
    ups = Ups(ups_profile(), tmp_path / "snmpd", values=values)
    ups.start()
    sink = RecordingSink()
    try:
        async with SensingService(config=_site(ups.port), sink=sink, clock=SystemClock()) as s:
            await until(lambda: s.device_health()[0].polls_ok >= 3)
            yield ups, s, sink
    finally:
        ups.stop()


@pytest.fixture
async def basic(tmp_path: Path) -> AsyncIterator[tuple[Ups, SensingService, RecordingSink]]:
    async for running in _running(tmp_path, BASIC):
        yield running


@pytest.fixture
async def lacking(tmp_path: Path) -> AsyncIterator[tuple[Ups, SensingService, RecordingSink]]:
    values = {oid: v for oid, v in BASIC.items() if oid != SECONDS_ON_BATTERY}
    async for running in _running(tmp_path, values):
        yield running


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[tuple[Ups, SensingService, RecordingSink]]:
    async for running in _running(tmp_path, UPS_VALUES):
        yield running


async def test_a_ups_serving_the_basic_objects_polls_with_the_others_unknown(
    basic: tuple[Ups, SensingService, RecordingSink],
) -> None:
    ups, service, sink = basic
    health = service.device_health()[0]
    assert health.ok and health.polls_failed == 0
    assert health.points_unknown == OPTIONAL_POINTS
    unknown = [v.point for v in service.live_values() if v.unknown]
    assert unknown == OPTIONAL_POINTS
    assert sink.transitions == []  # neither comm_failure nor profile_mismatch
    ups.set("output_source", 5)  # on battery: the served points still raise their alarms
    await until(lambda: sink.of("on_battery") == ["raised"])
    ups.set("output_source", 3)
    await until(lambda: sink.of("on_battery") == ["raised", "cleared"])


async def test_a_ups_lacking_a_required_object_raises_one_profile_mismatch(
    lacking: tuple[Ups, SensingService, RecordingSink],
) -> None:
    ups, service, sink = lacking
    assert sink.of("profile_mismatch") == ["raised"]
    mismatch = sink.transitions[0]
    assert mismatch.point == "profile"
    assert "seconds_on_battery (1.3.6.1.2.1.33.1.2.2.0)" in mismatch.reason
    assert sink.of("comm_failure") == []
    assert service.device_health()[0].ok
    ups.set("output_source", 5)
    await until(lambda: sink.of("on_battery") == ["raised"])
    # Still one alarm, however many polls; serving the object clears it.
    assert sink.of("profile_mismatch") == ["raised"]
    ups.serve(SECONDS_ON_BATTERY, "integer", "12")
    await until(lambda: sink.of("profile_mismatch") == ["raised", "cleared"])


async def test_a_ups_serving_everything_has_no_unknown_point(
    full: tuple[Ups, SensingService, RecordingSink],
) -> None:
    _, service, sink = full
    assert service.device_health()[0].points_unknown == []
    assert not any(v.unknown for v in service.live_values())
    assert sink.transitions == []


async def test_a_ups_that_does_not_answer_is_a_comm_failure(
    basic: tuple[Ups, SensingService, RecordingSink],
) -> None:
    ups, _, sink = basic
    ups.stop()
    await until(lambda: sink.of("comm_failure") == ["raised"])
    assert sink.of("profile_mismatch") == []


def test_profile_mismatch_is_raised_once_and_cleared_when_served() -> None:
    points = ups_profile().points
    clock = ManualClock()
    served = ServedEvaluator(equipment_id="ups-1", points=points)
    assert served.feed(["charge_remaining"], now=clock.now()) is None  # optional: unknown only
    raised = served.feed(["seconds_on_battery", "charge_remaining"], now=clock.now())
    assert raised is not None and raised.transition is Transition.RAISED
    assert served.feed(["output_source"], now=clock.now()) is None  # still one alarm
    cleared = served.feed(["charge_remaining"], now=clock.now())
    assert cleared is not None and cleared.transition is Transition.CLEARED


async def test_a_modbus_device_without_a_register_leaves_its_point_unknown() -> None:
    # pyModbusTCP answers "illegal data address" past its one holding register.
    server = ModbusServer(
        host="127.0.0.1", port=free_port(), no_block=True, data_bank=DataBank(h_regs_size=1)
    )
    server.start()
    server.data_bank.set_holding_registers(0, [215])  # 21.5 degC; no humidity register
    profile = load_profile(PROFILES / "modbus-env-sensor.yaml")
    required = {"temperature": True, "humidity": True}
    profile = profile.model_copy(
        update={
            "points": {
                n: p.model_copy(update={"required": required.get(n, False)})
                for n, p in profile.points.items()
            }
        }
    )
    config = SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "pm",
            "devices": [
                {
                    "driver": "modbus",
                    "id": "env-1",
                    "profile": profile.name,
                    "transport": {"kind": "tcp", "host": "127.0.0.1", "port": server.port},
                    "poll_s": 0.05,
                    "comm_failure_after": 1,
                }
            ],
            "profiles": {profile.name: profile.model_dump()},
        }
    )
    sink = RecordingSink()
    try:
        async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
            await until(lambda: service.device_health()[0].polls_ok >= 3)
            health = service.device_health()[0]
            assert health.ok and health.points_unknown == ["humidity"]
            values = {v.point: v.value for v in service.live_values()}
            assert values == {"temperature": 21.5, "temperature_low": 21.5, "humidity": None}
            assert sink.of("profile_mismatch") == ["raised"]
            assert sink.of("comm_failure") == []
    finally:
        server.stop()
