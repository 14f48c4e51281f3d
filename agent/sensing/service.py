"""The sensing service: one poller per device and the site's listeners, started, reloaded and
stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from agent.evaluation import raises
from agent.events import AlarmTransition, SensingSink
from agent.sensing.active import ActiveAlarms, TrackingSink
from agent.sensing.gpio import GpioPoller
from agent.sensing.listeners import Listeners
from agent.sensing.modbus import ModbusPoller
from agent.sensing.poller import PointValue, Poller
from agent.sensing.snmp import SnmpPoller
from clocks import Clock
from protocol import AlarmSnapshot, DeviceHealth, ListenerHealth, Transition
from siteconfig import (
    Device,
    GpioDevice,
    GpioProfile,
    ModbusDevice,
    ModbusProfile,
    SiteConfig,
    SnmpDevice,
    SnmpProfile,
)

log = logging.getLogger(__name__)


class SensingService:
    """Async context manager running every device's poller and the site's listeners."""

    def __init__(
        self,
        *,
        config: SiteConfig,
        sink: SensingSink,
        clock: Clock,
        initial_alarms: Sequence[AlarmSnapshot] = (),
    ) -> None:
        self._config = config
        self._clock = clock
        self._active = ActiveAlarms(initial_alarms)
        self._sink = TrackingSink(sink, self._active)
        self._pollers: dict[str, Poller] = {}
        self._listeners = Listeners(
            sink=self._sink, clock=clock, is_active=self._active.__contains__
        )

    @property
    def listeners(self) -> Listeners:
        """The trap and syslog listeners."""
        return self._listeners

    async def __aenter__(self) -> SensingService:
        try:
            pollers = [self._make(device, self._config) for device in self._config.devices]
            for poller in pollers:
                self._run(poller)
            await self._listeners.apply(self._config)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._listeners.aclose()
        await asyncio.gather(*(self._stop(device_id) for device_id in list(self._pollers)))

    async def reload(self, config: SiteConfig) -> None:
        """Apply ``config`` as one transaction, or raise and keep running the current one.

        Everything that can fail comes first: the pollers of the devices that changed or
        appeared are built (not started), the listeners' sockets are bound. Only then are the
        changed and removed devices stopped and the new pollers started. Alarms stay active
        across the swap (a restarted poller starts from them); the alarms of a removed device,
        or of an alarm its new profile no longer has, are cleared."""
        new = {d.id: d for d in config.devices}
        changed = [
            device_id
            for device_id, poller in self._pollers.items()
            if device_id not in new
            or new[device_id] != poller.device
            or config.profile_of(new[device_id]) != self._config.profile_of(poller.device)
        ]
        fresh = [
            self._make(device, config)
            for device_id, device in new.items()
            if device_id not in self._pollers or device_id in changed
        ]
        await self._listeners.apply(config)
        # The swap: nothing below fails.
        for device_id in changed:
            await self._stop(device_id)
        old, self._config = self._config, config
        self._clear_orphans(old, config)
        for poller in fresh:
            self._run(poller)

    def device_health(self) -> list[DeviceHealth]:
        """Poll health of every device."""
        return [poller.device_health() for poller in self._pollers.values()]

    def pollers(self) -> dict[str, tuple[asyncio.Task[None], int]]:
        """Each device's poller task and its poll count (failed polls included), which grows
        while it works: what the agent's task supervisor watches."""
        return {device_id: (p.task, p.polls) for device_id, p in self._pollers.items()}

    async def restart_device(self, device_id: str) -> None:
        """Start a device's poller again (its task died, or hung and was cancelled)."""
        poller = self._pollers.get(device_id)
        if poller is None:
            return  # removed by a reload meanwhile
        await self._stop(device_id)
        self._run(self._make(poller.device, self._config))

    def traps_rejected(self) -> int:
        """SNMP notifications rejected since start (bad credentials, unknown source, unmapped)."""
        return self._listeners.traps_rejected

    def listener_health(self) -> list[ListenerHealth]:
        """Each listener's address and counts since start."""
        return self._listeners.health()

    def live_values(self) -> list[PointValue]:
        """Each point's last value: contacts first, then measured points."""
        pollers = list(self._pollers.values())
        contacts = [v for p in pollers if isinstance(p, GpioPoller) for v in p.live_values()]
        measured = [v for p in pollers if not isinstance(p, GpioPoller) for v in p.live_values()]
        return contacts + measured

    def _make(self, device: Device, config: SiteConfig) -> Poller:
        profile = config.profile_of(device)
        sink, clock, active = self._sink, self._clock, self._active
        if isinstance(device, GpioDevice) and isinstance(profile, GpioProfile):
            return GpioPoller(device, profile, sink=sink, clock=clock, active=active)
        if isinstance(device, ModbusDevice) and isinstance(profile, ModbusProfile):
            return ModbusPoller(device, profile, sink=sink, clock=clock, active=active)
        if isinstance(device, SnmpDevice) and isinstance(profile, SnmpProfile):
            return SnmpPoller(device, profile, sink=sink, clock=clock, active=active)
        raise TypeError(f"device {device.id}: no poller for {device.driver}/{profile.kind}")

    def _run(self, poller: Poller) -> None:
        poller.start()
        self._pollers[poller.device.id] = poller

    async def _stop(self, device_id: str) -> None:
        poller = self._pollers.pop(device_id)
        await poller.stop()

    def _clear_orphans(self, old: SiteConfig, new: SiteConfig) -> None:
        """Clear the device alarms nothing in ``new`` can clear any more: those of a device it
        removed, or of a point or alarm type the device's profile no longer has."""
        before = {d.id for d in old.devices}
        devices = {d.id: d for d in new.devices}
        # A syslog pattern may name a device as its equipment: what it raises, it clears.
        by_syslog = {
            (p.equipment, p.point, p.alarm_type)
            for p in (new.syslog.patterns if new.syslog is not None else [])
        }
        for identity, severity in self._active.items():
            equipment, point, alarm_type = identity
            if equipment not in before or identity in by_syslog:
                continue  # not a device's alarm (the agent's own, a syslog pattern's)
            device = devices.get(equipment)
            if device is not None and raises(new.profile_of(device), point, alarm_type):
                continue
            why = "removed from the site file" if device is None else "no longer in its profile"
            log.info("alarm %s/%s/%s cleared: device %s", equipment, point, alarm_type, why)
            self._sink.transition(
                AlarmTransition(
                    equipment_id=equipment,
                    point=point,
                    alarm_type=alarm_type,
                    transition=Transition.CLEARED,
                    severity=severity,
                    value=None,
                    reason=f"device {equipment} {why}"[:500],
                    ts=self._clock.now(),
                )
            )
