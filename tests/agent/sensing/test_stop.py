"""A poller's stop always ends: also when its driver swallows the cancellation (as pymodbus's
connect does when the stop arrives in the turn of the event loop where a connect fails), and
within its bound when a driver will not let go at all."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.sensing import SensingService
from agent.sensing.active import ActiveAlarms
from agent.sensing.measured import MeasuredPoller, Reader
from agent.sensors.errors import DeviceError
from clocks import ManualClock
from simulators.broker import free_port
from siteconfig import ModbusDevice, ModbusProfile, SiteConfig, load_profile
from tests.agent.sensors.recording import RecordingSink, until

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"


def _modbus(device_id: str, transport: dict[str, Any]) -> dict[str, Any]:
    return {
        "driver": "modbus",
        "id": device_id,
        "profile": "modbus-env-sensor",
        "transport": transport,
        "poll_s": 0.01,
        "timeout_s": 0.5,
        "retries": 0,
        "backoff_max_s": 0.01,
    }


def _gone_devices() -> SiteConfig:
    """A Modbus TCP device nobody listens for any more and an RTU line whose pty is gone."""
    profile = load_profile(PROFILES / "modbus-env-sensor.yaml")
    return SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "nro",
            "devices": [
                _modbus("env-1", {"kind": "tcp", "host": "127.0.0.1", "port": free_port()}),
                _modbus("power-1", {"kind": "rtu", "port": "/dev/pts/no-such-pty"}),
            ],
            "profiles": {"modbus-env-sensor": profile.model_dump()},
        }
    )


async def test_a_stop_that_arrives_as_a_modbus_connect_fails_still_ends(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SensingService(config=_gone_devices(), sink=RecordingSink(), clock=clock)
    loop = asyncio.get_running_loop()
    connect = loop.create_connection
    stopping: list[asyncio.Task[None]] = []

    async def refused(*args: Any, **kwargs: Any) -> Any:
        try:
            return await connect(*args, **kwargs)
        except OSError:
            if not stopping:
                # The stop starts in the next turn of the loop: its cancellation reaches the
                # poller before it has seen the failed connect (pymodbus's asyncio.wait_for
                # then returns the connect's outcome and the cancellation is lost).
                loop.call_soon(
                    lambda: stopping.append(
                        asyncio.create_task(service.__aexit__(None, None, None))
                    )
                )
            raise

    monkeypatch.setattr(loop, "create_connection", refused)
    await service.__aenter__()
    await until(lambda: stopping)
    done, _ = await asyncio.wait(stopping, timeout=2)
    assert done, "the stop never ended"
    assert service.pollers() == {}


class _Stubborn:
    """A reader that turns ``swallow`` cancellations into a failed read (pymodbus's connect
    racing a stop), or ignores every cancellation for ``hold_s``, then fails."""

    def __init__(self, *, swallow: int = 0, hold_s: float = 0.0) -> None:
        self.swallow, self.hold_s = swallow, hold_s
        self.reads = 0

    async def read(self) -> dict[str, float]:
        self.reads += 1
        until = time.monotonic() + self.hold_s
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if self.swallow:
                    self.swallow -= 1
                    raise DeviceError("cannot connect") from None
                if time.monotonic() < until:
                    continue
                raise
            if self.hold_s and time.monotonic() >= until:
                raise DeviceError("no answer")

    def close(self) -> None:
        pass


class _Poller(MeasuredPoller):
    def __init__(self, reader: _Stubborn, clock: ManualClock) -> None:
        profile = load_profile(PROFILES / "modbus-env-sensor.yaml")
        assert isinstance(profile, ModbusProfile)
        device = ModbusDevice.model_validate(
            _modbus("env-1", {"kind": "tcp", "host": "127.0.0.1"}) | {"timeout_s": 60}
        )
        super().__init__(
            device, profile.points, sink=RecordingSink(), clock=clock, active=ActiveAlarms()
        )
        self.reader = reader

    def _open(self) -> tuple[Reader, float]:
        return self.reader, 60.0


@pytest.fixture
async def started(clock: ManualClock) -> AsyncIterator[list[_Poller]]:
    pollers: list[_Poller] = []
    yield pollers
    for poller in pollers:
        await poller.stop()


async def test_a_driver_that_swallows_the_cancellation_is_stopped_anyway(
    clock: ManualClock, started: list[_Poller]
) -> None:
    poller = _Poller(_Stubborn(swallow=1), clock)
    started.append(poller)
    poller.start()
    await until(lambda: poller.reader.reads)
    began = time.monotonic()
    assert await poller.stop()
    assert time.monotonic() - began < 2
    assert poller.task.done()
    # What the driver made of the stop is no failed poll.
    assert poller.health.polls_failed == 0


async def test_a_poller_that_will_not_end_is_left_behind_and_the_stop_returns(
    clock: ManualClock, started: list[_Poller], caplog: pytest.LogCaptureFixture
) -> None:
    poller = _Poller(_Stubborn(hold_s=1.0), clock)
    started.append(poller)
    poller.start()
    await until(lambda: poller.reader.reads)
    began = time.monotonic()
    caplog.set_level(logging.ERROR, logger="agent.sensing")
    assert not await poller.stop(within_s=0.3)
    assert 0.3 <= time.monotonic() - began < 2
    assert "device env-1: its poller is still running 0.3 s after its stop: left behind" in (
        caplog.text
    )
    # Once the driver lets go, the poller ends by itself: it was told to stop.
    await until(lambda: poller.task.done())
    assert poller.reader.reads == 1
