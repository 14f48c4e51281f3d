"""Sensing: one task per device, readings through edge evaluation to the sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from agent.evaluation import BitEvaluator, ContactEvaluator, TelemetryGate, ThresholdEvaluator
from agent.events import AlarmTransition, Sample, SensingSink
from agent.sensors.errors import DeviceError
from agent.sensors.syslog import SyslogReceiver
from clocks import Clock
from protocol import AlarmSnapshot, DeviceHealth, Severity, Transition
from siteconfig import Device, GpioDevice, SiteConfig
from siteconfig.profiles import (
    BitAlarm,
    EqualsAlarm,
    GpioProfile,
    ModbusPoint,
    ModbusProfile,
    SnmpPoint,
    SnmpProfile,
    ThresholdAlarm,
)
from siteconfig.site import ModbusDevice, SnmpDevice

if TYPE_CHECKING:
    from agent.sensors.snmp.traps import TrapReceiver

# Driver modules (gpiozero, pymodbus, pysnmp) are imported where a device first needs them:
# each costs megabytes of a Pi's memory, and most sites use only some of them.

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
    polls_ok: int = 0
    polls_failed: int = 0


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
        self._traps: TrapReceiver | None = None
        self._syslog: SyslogReceiver | None = None
        self._traps_rejected_before = 0
        self._listeners = contextlib.AsyncExitStack()

    async def __aenter__(self) -> SensingService:
        for device in self._config.devices:
            self._start(device)
        try:
            await self._start_listeners()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_listeners()
        for device_id in list(self._tasks):
            await self._stop(device_id)

    async def _start_listeners(self) -> None:
        """Trap and syslog sockets, bound here, inside the running loop."""
        config = self._config
        stack = contextlib.AsyncExitStack()
        self._listeners = stack
        if config.traps is not None:
            from agent.sensors.snmp.traps import TrapReceiver, TrapSource

            sources = [
                TrapSource(device=d, profile=p)
                for d in config.devices
                if isinstance(d, SnmpDevice) and isinstance(p := config.profile_of(d), SnmpProfile)
            ]
            self._traps = await stack.enter_async_context(
                TrapReceiver(
                    config.traps,
                    sources=sources,
                    on_transition=self._sink.transition,
                    clock=self._clock,
                )
            )
        if config.syslog is not None:
            self._syslog = await stack.enter_async_context(
                SyslogReceiver(
                    config.syslog, on_transition=self._sink.transition, clock=self._clock
                )
            )

    async def _stop_listeners(self) -> None:
        if self._traps is not None:
            self._traps_rejected_before += self._traps.rejected
        self._traps, self._syslog = None, None
        await self._listeners.aclose()

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
        listeners_changed = (
            config.traps != self._config.traps
            or config.syslog != self._config.syslog
            or (config.traps is not None and config.devices != self._config.devices)
        )
        if listeners_changed:
            await self._stop_listeners()
        self._config = config
        for device_id, device in new.items():
            if device_id not in self._tasks:
                self._start(device)
        if listeners_changed:
            await self._start_listeners()

    def device_health(self) -> list[DeviceHealth]:
        """Poll health of every device."""
        return [
            DeviceHealth(
                device_id=device_id,
                ok=h.ok,
                last_ok=h.last_ok,
                consecutive_failures=h.failures,
                last_error=h.last_error,
                polls_ok=h.polls_ok,
                polls_failed=h.polls_failed,
            )
            for device_id, h in self._health.items()
        ]

    def pollers(self) -> dict[str, tuple[asyncio.Task[None], int]]:
        """Each device's poller task and its poll count (failed polls included), which grows
        while it works: what the agent's task supervisor watches."""
        return {
            device_id: (task, health.polls_ok + health.polls_failed)
            for device_id, task in self._tasks.items()
            if (health := self._health.get(device_id)) is not None
        }

    async def restart_device(self, device_id: str) -> None:
        """Start a device's poller again (its task died, or hung and was cancelled)."""
        device = self._devices.get(device_id)
        if device is None:
            return  # removed by a reload meanwhile
        await self._stop(device_id)
        self._start(device)

    def traps_rejected(self) -> int:
        """SNMP notifications rejected since start (bad credentials, unknown source, unmapped)."""
        current = self._traps.rejected if self._traps is not None else 0
        return self._traps_rejected_before + current

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
        elif isinstance(device, SnmpDevice) and isinstance(profile, SnmpProfile):
            from agent.sensors.snmp import require_support

            require_support(device)  # refuse now, not as a device that never answers
            poller = self._poll_snmp(device, profile)
        else:
            raise TypeError(f"device {device.id}: no poller for {device.driver}/{profile.kind}")
        self._tasks[device.id] = asyncio.create_task(poller, name=f"device-{device.id}")

    async def _stop(self, device_id: str) -> None:
        task = self._tasks.pop(device_id)
        task.cancel()
        # A poller that died has been reported (and its error logged) by the supervisor.
        with contextlib.suppress(asyncio.CancelledError, Exception):
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
        from agent.sensors.gpio import ContactReader

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
                health.polls_ok += 1
                for ev in evaluators:
                    transition = ev.feed(closed=levels[ev.point], now=now, mono=mono)
                    if transition is not None:
                        self._sink.transition(transition)
                await asyncio.sleep(device.poll_ms / 1000)
        finally:
            reader.close()

    async def _poll_modbus(self, device: ModbusDevice, profile: ModbusProfile) -> None:
        from agent.sensors.modbus import ModbusReader

        reader = ModbusReader(device, profile)
        try:
            await self._poll_measured(
                device,
                profile.points,
                lambda: reader.read(),
                timeout_s=device.timeout_s * (len(reader.blocks) + 1),
            )
        finally:
            reader.close()

    async def _poll_snmp(self, device: SnmpDevice, profile: SnmpProfile) -> None:
        from agent.sensors.snmp import SnmpReader

        reader = SnmpReader(device, profile)
        # A GETBULK walk may take several round trips per table column.
        requests = 1 + 4 * sum(1 for p in profile.points.values() if p.table)
        try:
            await self._poll_measured(
                device, profile.points, reader.read, timeout_s=device.timeout_s * (requests + 1)
            )
        finally:
            reader.close()

    async def _poll_measured(
        self,
        device: ModbusDevice | SnmpDevice,
        points: Mapping[str, ModbusPoint | SnmpPoint],
        read: Callable[[], Awaitable[Mapping[str, float | bool | str]]],
        *,
        timeout_s: float,
    ) -> None:
        """Poll, evaluate, send telemetry; back off on failure; a dead device is never silent."""
        evaluators: dict[str, ThresholdEvaluator | BitEvaluator] = {}
        gates: dict[str, TelemetryGate] = {}
        equals: dict[str, frozenset[float]] = {}
        # Equals alarms that hold only while another point (same row) has one of some values.
        conditions: dict[str, tuple[str, frozenset[float]]] = {}
        # Counters reported as rates: the previous (value, monotonic time) of each row.
        counters: dict[str, tuple[float, float]] = {}

        def spec_of(name: str) -> ModbusPoint | SnmpPoint | None:
            # A table row "<point>.<index>" means what its column means.
            return points.get(name) or points.get(name.split(".", 1)[0])

        def prepare(name: str, point: ModbusPoint | SnmpPoint) -> None:
            active = any((device.id, name) == (e, p) for e, p, _ in self._active)
            is_bit = isinstance(point, ModbusPoint) and point.is_bit
            if isinstance(point.alarm, ThresholdAlarm):
                evaluators[name] = ThresholdEvaluator(
                    equipment_id=device.id, point=name, alarm=point.alarm, alarm_active=active
                )
            elif isinstance(point.alarm, BitAlarm):
                evaluators[name] = BitEvaluator(
                    equipment_id=device.id, point=name, alarm=point.alarm, alarm_active=active
                )
            elif isinstance(point.alarm, EqualsAlarm):
                equals[name] = frozenset(float(v) for v in point.alarm.equals)
                condition = point.alarm.only_if
                if condition is not None:
                    _, dot, row = name.partition(".")
                    other = f"{condition.point}.{row}" if dot else condition.point
                    conditions[name] = (other, frozenset(float(v) for v in condition.equals))
                evaluators[name] = BitEvaluator(
                    equipment_id=device.id,
                    point=name,
                    alarm=point.alarm.as_bit(),
                    alarm_active=active,
                )
            if point.telemetry is not None and not is_bit:
                gates[name] = TelemetryGate(point.telemetry)

        comm_active = (device.id, "comm", "comm_failure") in self._active
        health = self._health[device.id]
        while True:
            try:
                values = await self._read_with_retries(read, device, timeout_s)
            except DeviceError as err:
                health.ok, health.failures, health.last_error = (
                    False,
                    health.failures + 1,
                    str(err)[:500],
                )
                health.polls_failed += 1
                log.warning("device %s: %s (%d in a row)", device.id, err, health.failures)
                if health.failures >= device.comm_failure_after and not comm_active:
                    comm_active = True
                    self._sink.transition(self._comm(device, Transition.RAISED, str(err)))
                delay = min(device.backoff_max_s, device.poll_s * 2 ** (health.failures - 1))
                await asyncio.sleep(delay)
                continue
            now, mono = self._clock.now(), self._clock.monotonic()
            health.ok, health.last_ok, health.failures, health.last_error = True, now, 0, None
            health.polls_ok += 1
            if comm_active:
                comm_active = False
                self._sink.transition(self._comm(device, Transition.CLEARED, "answering again"))
            numeric = {k: v for k, v in values.items() if not isinstance(v, str)}
            numeric = _rates(numeric, spec_of, counters, mono=mono)
            self._values[device.id] = numeric
            samples = []
            for name, value in numeric.items():
                spec = spec_of(name)
                if spec is None:
                    continue
                if name not in evaluators and name not in gates:
                    prepare(name, spec)
                evaluator = evaluators.get(name)
                if name in equals and isinstance(evaluator, BitEvaluator):
                    holds = float(value) in equals[name]
                    if holds and name in conditions:
                        other, allowed = conditions[name]
                        holds = other in numeric and float(numeric[other]) in allowed
                    transition = evaluator.feed(value=holds, now=now, mono=mono)
                    if transition is not None:  # the enumerated value, not its truth
                        transition = dataclasses.replace(transition, value=value)
                elif isinstance(evaluator, ThresholdEvaluator) and not isinstance(value, bool):
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
                            unit=spec.unit,
                            ts=now,
                        )
                    )
            if samples:
                self._sink.samples(samples)
            await asyncio.sleep(device.poll_s)

    @staticmethod
    async def _read_with_retries(
        read: Callable[[], Awaitable[Mapping[str, float | bool | str]]],
        device: ModbusDevice | SnmpDevice,
        timeout_s: float,
    ) -> Mapping[str, float | bool | str]:
        last: DeviceError | None = None
        for _ in range(device.retries + 1):
            try:
                # Not wait_for: on Python 3.11 it can swallow the stop's cancellation.
                async with asyncio.timeout(timeout_s):
                    return await read()
            except TimeoutError:
                last = DeviceError(f"no answer within {device.timeout_s} s")
            except (DeviceError, OSError) as err:
                last = err if isinstance(err, DeviceError) else DeviceError(str(err))
        assert last is not None
        raise last

    def _comm(
        self, device: ModbusDevice | SnmpDevice, transition: Transition, reason: str
    ) -> AlarmTransition:
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


def _rates(
    values: dict[str, float | bool],
    spec_of: Callable[[str], ModbusPoint | SnmpPoint | None],
    previous: dict[str, tuple[float, float]],
    *,
    mono: float,
) -> dict[str, float | bool]:
    """Counters marked ``rate`` become per-second rates since the previous poll; a first read,
    or a counter that went backwards (wrapped, device rebooted), gives no value this time."""
    out: dict[str, float | bool] = {}
    for name, value in values.items():
        spec = spec_of(name)
        if not (isinstance(spec, SnmpPoint) and spec.rate) or isinstance(value, bool):
            out[name] = value
            continue
        before = previous.get(name)
        previous[name] = (float(value), mono)
        if before is not None and value >= before[0] and mono > before[1]:
            out[name] = (float(value) - before[0]) / (mono - before[1])
    return out
