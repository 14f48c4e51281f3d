"""Sensing: one task per device, readings through edge evaluation to the sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.config import Device, GpioDevice, SiteConfig
from agent.config.profiles import BitAlarm, GpioProfile, ModbusProfile, ThresholdAlarm
from agent.config.site import ModbusDevice
from agent.evaluation import BitEvaluator, ContactEvaluator, TelemetryGate, ThresholdEvaluator
from agent.events import AlarmTransition, Sample, SensingSink
from agent.sensors import ContactReader, DeviceError, ModbusReader
from clocks import Clock
from protocol import AlarmSnapshot, DeviceHealth, Severity, Transition

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
        self._devices: dict[str, Device] = {}
        self._health: dict[str, _Health] = {}
        self._evaluators: dict[str, list[ContactEvaluator]] = {}
        self._values: dict[str, dict[str, float | bool]] = {}

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
        contacts = [
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
        measured = [
            PointValue(
                device_id=device_id,
                point=point,
                value=value,
                alarm_active=any((device_id, point) == (e, p) for e, p, _ in self._active),
                at=self._health[device_id].last_ok,
            )
            for device_id, values in self._values.items()
            for point, value in values.items()
        ]
        return contacts + measured

    def _start(self, device: Device) -> None:
        profile = self._config.profile_of(device)
        self._devices[device.id] = device
        self._health[device.id] = _Health()
        if isinstance(device, GpioDevice) and isinstance(profile, GpioProfile):
            poller = self._poll_gpio(device, profile)
        elif isinstance(device, ModbusDevice) and isinstance(profile, ModbusProfile):
            poller = self._poll_modbus(device, profile)
        else:
            raise TypeError(f"device {device.id}: no poller for {device.driver}/{profile.kind}")
        self._tasks[device.id] = asyncio.create_task(poller, name=f"device-{device.id}")

    async def _stop(self, device_id: str) -> None:
        task = self._tasks.pop(device_id)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._devices.pop(device_id, None)
        self._evaluators.pop(device_id, None)
        self._values.pop(device_id, None)
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

    async def _poll_modbus(self, device: ModbusDevice, profile: ModbusProfile) -> None:
        """Poll, evaluate, send telemetry; back off on failure; a dead device is never silent."""
        evaluators: dict[str, ThresholdEvaluator | BitEvaluator] = {}
        gates: dict[str, TelemetryGate] = {}
        for name, point in profile.points.items():
            active = any((device.id, name) == (e, p) for e, p, _ in self._active)
            if isinstance(point.alarm, ThresholdAlarm):
                evaluators[name] = ThresholdEvaluator(
                    equipment_id=device.id, point=name, alarm=point.alarm, alarm_active=active
                )
            elif isinstance(point.alarm, BitAlarm):
                evaluators[name] = BitEvaluator(
                    equipment_id=device.id, point=name, alarm=point.alarm, alarm_active=active
                )
            if point.telemetry is not None and not point.is_bit:
                gates[name] = TelemetryGate(point.telemetry)
        comm_active = (device.id, "comm", "comm_failure") in self._active
        health = self._health[device.id]
        reader = ModbusReader(device, profile)
        try:
            while True:
                try:
                    values = await self._read_with_retries(reader, device)
                except DeviceError as err:
                    health.ok, health.failures, health.last_error = (
                        False,
                        health.failures + 1,
                        str(err)[:500],
                    )
                    log.warning("device %s: %s (%d in a row)", device.id, err, health.failures)
                    if health.failures >= device.comm_failure_after and not comm_active:
                        comm_active = True
                        self._sink.transition(self._comm(device, Transition.RAISED, str(err)))
                    delay = min(device.backoff_max_s, device.poll_s * 2 ** (health.failures - 1))
                    await asyncio.sleep(delay)
                    continue
                now, mono = self._clock.now(), self._clock.monotonic()
                health.ok, health.last_ok, health.failures, health.last_error = True, now, 0, None
                if comm_active:
                    comm_active = False
                    self._sink.transition(self._comm(device, Transition.CLEARED, "answering again"))
                self._values[device.id] = values
                samples = []
                for name, value in values.items():
                    evaluator = evaluators.get(name)
                    if isinstance(evaluator, ThresholdEvaluator) and not isinstance(value, bool):
                        transition = evaluator.feed(value=value, now=now, mono=mono)
                    elif isinstance(evaluator, BitEvaluator):
                        transition = evaluator.feed(value=bool(value), now=now, mono=mono)
                    else:
                        transition = None
                    if transition is not None:
                        self._sink.transition(transition)
                    gate = gates.get(name)
                    if gate is not None and gate.admit(float(value), mono=mono):
                        samples.append(
                            Sample(
                                equipment_id=device.id,
                                point=name,
                                value=float(value),
                                unit=profile.points[name].unit,
                                ts=now,
                            )
                        )
                if samples:
                    self._sink.samples(samples)
                await asyncio.sleep(device.poll_s)
        finally:
            reader.close()

    @staticmethod
    async def _read_with_retries(
        reader: ModbusReader, device: ModbusDevice
    ) -> dict[str, float | bool]:
        last: DeviceError | None = None
        for _ in range(device.retries + 1):
            try:
                return await asyncio.wait_for(
                    reader.read(), timeout=device.timeout_s * (len(reader.blocks) + 1)
                )
            except TimeoutError:
                last = DeviceError(f"no answer within {device.timeout_s} s")
            except (DeviceError, OSError) as err:
                last = err if isinstance(err, DeviceError) else DeviceError(str(err))
        assert last is not None
        raise last

    def _comm(self, device: ModbusDevice, transition: Transition, reason: str) -> AlarmTransition:
        return AlarmTransition(
            equipment_id=device.id,
            point="comm",
            alarm_type="comm_failure",
            transition=transition,
            severity=Severity.MAJOR,
            value=None,
            reason=f"device {device.id}: {reason}"[:500],
            ts=self._clock.now(),
        )
