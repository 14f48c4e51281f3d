"""The sensing service: one poller per device and the site's listeners, started, reloaded and
stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from agent.events import SensingSink
from agent.sensing.active import ActiveAlarms, TrackingSink
from agent.sensing.gpio import GpioPoller
from agent.sensing.listeners import Listeners
from agent.sensing.modbus import ModbusPoller
from agent.sensing.poller import PointValue, Poller
from agent.sensing.snmp import SnmpPoller
from clocks import Clock
from protocol import AlarmSnapshot, DeviceHealth
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
        self._listeners: Listeners | None = None
        self._traps_rejected_before = 0

    async def __aenter__(self) -> SensingService:
        try:
            for device in self._config.devices:
                self._start(device)
            await self._start_listeners()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_listeners()
        await asyncio.gather(*(self._stop(device_id) for device_id in list(self._pollers)))

    async def reload(self, config: SiteConfig) -> None:
        """Restart only the devices whose definition or profile changed."""
        new = {d.id: d for d in config.devices}
        for device_id, poller in list(self._pollers.items()):
            old = poller.device
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
            if device_id not in self._pollers:
                self._start(device)
        if listeners_changed:
            await self._start_listeners()

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
        self._start(poller.device)

    def traps_rejected(self) -> int:
        """SNMP notifications rejected since start (bad credentials, unknown source, unmapped)."""
        current = self._listeners.traps_rejected if self._listeners is not None else 0
        return self._traps_rejected_before + current

    def live_values(self) -> list[PointValue]:
        """Each point's last value: contacts first, then measured points."""
        pollers = list(self._pollers.values())
        contacts = [v for p in pollers if isinstance(p, GpioPoller) for v in p.live_values()]
        measured = [v for p in pollers if not isinstance(p, GpioPoller) for v in p.live_values()]
        return contacts + measured

    def _start(self, device: Device) -> None:
        profile = self._config.profile_of(device)
        sink, clock, active = self._sink, self._clock, self._active
        poller: Poller
        if isinstance(device, GpioDevice) and isinstance(profile, GpioProfile):
            poller = GpioPoller(device, profile, sink=sink, clock=clock, active=active)
        elif isinstance(device, ModbusDevice) and isinstance(profile, ModbusProfile):
            poller = ModbusPoller(device, profile, sink=sink, clock=clock, active=active)
        elif isinstance(device, SnmpDevice) and isinstance(profile, SnmpProfile):
            poller = SnmpPoller(device, profile, sink=sink, clock=clock, active=active)
        else:
            raise TypeError(f"device {device.id}: no poller for {device.driver}/{profile.kind}")
        poller.start()
        self._pollers[device.id] = poller

    async def _stop(self, device_id: str) -> None:
        poller = self._pollers.pop(device_id)
        await poller.stop()

    async def _start_listeners(self) -> None:
        self._listeners = await Listeners(
            self._config, sink=self._sink, clock=self._clock
        ).__aenter__()

    async def _stop_listeners(self) -> None:
        listeners, self._listeners = self._listeners, None
        if listeners is not None:
            self._traps_rejected_before += listeners.traps_rejected
            await listeners.__aexit__(None, None, None)
