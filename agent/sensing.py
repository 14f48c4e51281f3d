"""Sensing: one task per device, readings through edge evaluation to the sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.config import GpioDevice, SiteConfig
from agent.config.profiles import GpioProfile
from agent.evaluation import ContactEvaluator
from agent.events import SensingSink
from agent.sensors import ContactReader
from clocks import Clock
from protocol import AlarmSnapshot, DeviceHealth

log = logging.getLogger(__name__)


@dataclass
class PointValue:
    """A point's live value, for ``shelterwatch agent check``."""

    device_id: str
    point: str
    value: float | bool | None
    alarm_active: bool
    at: datetime | None


@dataclass
class _Health:
    ok: bool = False
    last_ok: datetime | None = None
    failures: int = 0
    last_error: str | None = None


class SensingService:
    """Async context manager running every device's poller."""

    def __init__(
        self,
        *,
        config: SiteConfig,
        sink: SensingSink,
        clock: Clock,
        initial_alarms: Sequence[AlarmSnapshot] = (),
    ) -> None:
        self._config = config
        self._sink = sink
        self._clock = clock
        self._active = {(a.equipment_id, a.point, a.alarm_type) for a in initial_alarms}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._devices: dict[str, GpioDevice] = {}
        self._health: dict[str, _Health] = {}
        self._evaluators: dict[str, list[ContactEvaluator]] = {}

    async def __aenter__(self) -> SensingService:
        for device in self._config.devices:
            self._start(device)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for device_id in list(self._tasks):
            await self._stop(device_id)

    async def reload(self, config: SiteConfig) -> None:
        """Restart only the devices whose definition or profile changed."""
        new = {d.id: d for d in config.devices}
        for device_id, old in list(self._devices.items()):
            changed = (
                device_id not in new
                or new[device_id] != old
                or (config.profile_of(new[device_id]) != self._config.profile_of(old))
            )
            if changed:
                await self._stop(device_id)
        self._config = config
        for device_id, device in new.items():
            if device_id not in self._tasks:
                self._start(device)

    def device_health(self) -> list[DeviceHealth]:
        """Poll health of every device."""
        return [
            DeviceHealth(
                device_id=device_id,
                ok=h.ok,
                last_ok=h.last_ok,
                consecutive_failures=h.failures,
                last_error=h.last_error,
            )
            for device_id, h in self._health.items()
        ]

    def traps_rejected(self) -> int:
        """No trap listener runs for GPIO-only sites."""
        return 0

    def live_values(self) -> list[PointValue]:
        """Each point's last debounced value."""
        return [
            PointValue(
                device_id=device_id,
                point=ev.point,
                value=ev.last_closed,
                alarm_active=ev.alarm_active,
                at=self._health[device_id].last_ok,
            )
            for device_id, evaluators in self._evaluators.items()
            for ev in evaluators
        ]

    def _start(self, device: GpioDevice) -> None:
        profile = self._config.profile_of(device)
        self._devices[device.id] = device
        self._health[device.id] = _Health()
        self._tasks[device.id] = asyncio.create_task(
            self._poll_gpio(device, profile), name=f"device-{device.id}"
        )

    async def _stop(self, device_id: str) -> None:
        task = self._tasks.pop(device_id)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._devices.pop(device_id, None)
        self._evaluators.pop(device_id, None)
        self._health.pop(device_id, None)

    async def _poll_gpio(self, device: GpioDevice, profile: GpioProfile) -> None:
        evaluators = [
            ContactEvaluator(
                equipment_id=device.id,
                point=point,
                spec=spec,
                alarm_active=(device.id, point, spec.alarm.alarm_type) in self._active,
            )
            for point, spec in profile.points.items()
        ]
        self._evaluators[device.id] = evaluators
        health = self._health[device.id]
        try:
            reader = ContactReader(
                device.pins, pull_up={p: s.pull_up for p, s in profile.points.items()}
            )
        except Exception as err:  # gpiozero raises many types for a missing/busy pin
            health.ok, health.last_error = False, f"cannot open pins: {err}"
            log.error("device %s: %s", device.id, health.last_error)
            raise
        try:
            while True:
                levels = reader.read()
                now, mono = self._clock.now(), self._clock.monotonic()
                health.ok, health.last_ok, health.failures = True, now, 0
                for ev in evaluators:
                    transition = ev.feed(closed=levels[ev.point], now=now, mono=mono)
                    if transition is not None:
                        self._sink.transition(transition)
                await asyncio.sleep(device.poll_ms / 1000)
        finally:
            reader.close()
