"""The pollers: health, retries, backoff and the communication-failure alarm of a measured
device (with a scripted driver), GPIO contacts on gpiozero's mock pins, and a poller restarted
by the supervisor or a reload that starts from the alarms raised before it (a real Modbus
server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from pyModbusTCP.server import ModbusServer

from agent.sensing import SensingService
from agent.sensing.active import ActiveAlarms
from agent.sensing.measured import MeasuredPoller, Reader
from agent.sensors.errors import DeviceError
from clocks import ManualClock, SystemClock
from protocol import AlarmSnapshot, Severity
from simulators.broker import free_port
from siteconfig import ModbusDevice, ModbusProfile, SiteConfig, load_profile
from tests.agent.sensors.recording import RecordingSink, until

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"


class _Scripted:
    """A driver answering from a script: a dict is a reading, an exception a failed read."""

    def __init__(self, script: list[dict[str, float] | Exception]) -> None:
        self.script = script
        self.reads = 0

    async def read(self) -> dict[str, float]:
        self.reads += 1
        step = self.script[min(self.reads, len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    def close(self) -> None:
        pass


class _Poller(MeasuredPoller):
    def __init__(self, reader: _Scripted, sink: RecordingSink, **device: Any) -> None:
        profile = load_profile(PROFILES / "modbus-env-sensor.yaml")
        assert isinstance(profile, ModbusProfile)
        super().__init__(
            ModbusDevice.model_validate(
                {
                    "driver": "modbus",
                    "id": "env-1",
                    "profile": "modbus-env-sensor",
                    "transport": {"kind": "tcp", "host": "127.0.0.1"},
                    "poll_s": 0.01,
                    "retries": 1,
                    "comm_failure_after": 2,
                    **device,
                }
            ),
            profile.points,
            sink=sink,
            clock=ManualClock(),
            active=ActiveAlarms(),
        )
        self.reader = reader

    def _open(self) -> tuple[Reader, float]:
        return self.reader, 1.0


async def test_a_dead_device_is_retried_backs_off_raises_comm_failure_and_clears_it() -> None:
    sink = RecordingSink()
    fail = DeviceError("cannot connect to modbus 127.0.0.1:502 unit 1")
    ok = {"temperature": 21.0, "humidity": 40.0, "temperature_low": 21.0}
    poller = _Poller(_Scripted([ok, fail, fail, fail, fail, ok]), sink)
    poller.start()
    try:
        # Each poll tries twice (retries: 1): two failed polls are four failed reads.
        await until(lambda: sink.of("comm_failure") == ["raised"])
        assert poller.reader.reads == 5
        health = poller.device_health()
        assert (health.ok, health.consecutive_failures, health.polls_failed) == (False, 2, 2)
        assert health.last_error == str(fail)
        await until(lambda: sink.of("comm_failure") == ["raised", "cleared"])
        health = poller.device_health()
        assert (health.ok, health.consecutive_failures, health.last_error) == (True, 0, None)
        assert health.polls_ok >= 2
    finally:
        await poller.stop()
    raised = next(t for t in sink.transitions if t.alarm_type == "comm_failure")
    assert raised.reason == f"device env-1: {fail}"


@pytest.mark.parametrize(
    ("failures", "backoff_s"), [(1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0), (9, 60.0)]
)
def test_the_backoff_doubles_from_the_poll_period_up_to_its_cap(
    failures: int, backoff_s: float
) -> None:
    poller = _Poller(_Scripted([]), RecordingSink(), poll_s=10, backoff_max_s=60)
    poller.health.failures = failures
    assert poller.backoff_s() == backoff_s


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    before = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        Device.pin_factory = before


async def test_gpio_contacts_through_sensing(mock_pins: MockFactory) -> None:
    profile = load_profile(PROFILES / "gpio-shelter-contacts.yaml")
    pins = {"door": 17, "fire": 27, "hvac_fault": 22, "mains_present": 23}
    config = SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "pm",
            "devices": [
                {
                    "driver": "gpio",
                    "id": "contacts",
                    "profile": profile.name,
                    "pins": pins,
                    "poll_ms": 5,
                }
            ],
            "profiles": {profile.name: profile.model_dump()},
        }
    )
    sink = RecordingSink()
    async with SensingService(config=config, sink=sink, clock=SystemClock()) as sensing:

        def door() -> tuple[object, bool] | None:
            value = next((v for v in sensing.live_values() if v.point == "door"), None)
            return None if value is None else (value.value, value.alarm_active)

        # Driven once the poller opened its pins (which sets their pull-ups).
        await until(lambda: (d := door()) is not None and d[0] is not None)
        pin = mock_pins.pin(pins["door"])
        pin.drive_low()  # pulled up: low is the contact closed, the door shut
        await until(lambda: door() == (True, False))
        before = len(sink.of("door_open"))
        pin.drive_high()
        await until(lambda: sink.of("door_open")[before:] == ["raised"])
        assert door() == (False, True)
        [health] = sensing.device_health()
        assert health.ok and health.polls_ok > 0 and health.device_id == "contacts"
        pin.drive_low()
        await until(lambda: sink.of("door_open")[before:] == ["raised", "cleared"])


@pytest.fixture
def server() -> Iterator[ModbusServer]:
    srv = ModbusServer(host="127.0.0.1", port=free_port(), no_block=True)
    srv.start()
    srv.data_bank.set_holding_registers(0, [215, 400])  # 21.5 degC, 40.0 %
    yield srv
    srv.stop()


def _env_site(port: int, *, poll_s: float = 0.05) -> SiteConfig:
    profile = load_profile(PROFILES / "modbus-env-sensor.yaml")
    assert isinstance(profile, ModbusProfile)
    quick = profile.model_copy(
        update={
            "points": {
                name: p.model_copy(
                    update={"alarm": p.alarm.model_copy(update={"raise_delay_s": 0})}
                )
                if p.alarm
                else p
                for name, p in profile.points.items()
            }
        }
    )
    return SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "pm",
            "devices": [
                {
                    "driver": "modbus",
                    "id": "env-1",
                    "profile": profile.name,
                    "transport": {"kind": "tcp", "host": "127.0.0.1", "port": port},
                    "poll_s": poll_s,
                    "timeout_s": 0.5,
                }
            ],
            "profiles": {profile.name: quick.model_dump()},
        }
    )


async def test_a_restarted_poller_clears_the_alarm_it_raised_before_its_restart(
    server: ModbusServer,
) -> None:
    sink = RecordingSink()
    async with SensingService(config=_env_site(server.port), sink=sink, clock=SystemClock()) as s:
        server.data_bank.set_holding_registers(0, [360])  # 36.0 degC
        await until(lambda: sink.of("temp_high") == ["raised"])
        await until(
            lambda: any(v.point == "temperature" and v.alarm_active for v in s.live_values())
        )
        await s.restart_device("env-1")  # as the supervisor does with a hung poller
        await s.reload(_env_site(server.port, poll_s=0.06))  # a changed device restarts too
        server.data_bank.set_holding_registers(0, [210])
        await until(lambda: sink.of("temp_high") == ["raised", "cleared"])
        await asyncio.sleep(0)
        assert not any(v.alarm_active for v in s.live_values())


async def test_an_alarm_the_outbox_holds_as_active_clears_on_a_normal_value(
    server: ModbusServer,
) -> None:
    sink = RecordingSink()
    active = AlarmSnapshot(
        equipment_id="env-1",
        point="temperature",
        alarm_type="temp_high",
        severity=Severity.MAJOR,
        since=SystemClock().now(),
    )
    async with SensingService(
        config=_env_site(server.port), sink=sink, clock=SystemClock(), initial_alarms=[active]
    ):
        await until(lambda: sink.of("temp_high") == ["cleared"])
