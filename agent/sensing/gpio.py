"""The poller of GPIO contacts: reads the pins every ``poll_ms``, debounced by evaluation."""

from __future__ import annotations

import asyncio
import logging

from agent.evaluation import ContactEvaluator
from agent.events import SensingSink
from agent.sensing.active import ActiveAlarms
from agent.sensing.poller import PointValue, Poller
from clocks import Clock
from siteconfig import GpioDevice, GpioProfile

log = logging.getLogger(__name__)


class GpioPoller(Poller):
    """Dry contacts on GPIO inputs. A pin that cannot be opened kills the task (reported and
    retried by the supervisor); reading open pins does not fail."""

    device: GpioDevice

    def __init__(
        self,
        device: GpioDevice,
        profile: GpioProfile,
        *,
        sink: SensingSink,
        clock: Clock,
        active: ActiveAlarms,
    ) -> None:
        super().__init__(device, sink=sink, clock=clock, active=active)
        self._profile = profile
        self._evaluators: list[ContactEvaluator] = []

    def live_values(self) -> list[PointValue]:
        """Each contact's last debounced position (closed=True)."""
        return [
            PointValue(
                device_id=self.device.id,
                point=ev.point,
                value=ev.last_closed,
                alarm_active=ev.alarm_active,
                at=self.health.last_ok,
            )
            for ev in self._evaluators
        ]

    async def _run(self) -> None:
        device, profile = self.device, self._profile
        self._evaluators = [
            ContactEvaluator(
                equipment_id=device.id,
                point=point,
                spec=spec,
                alarm_active=(device.id, point, spec.alarm.alarm_type) in self._active,
            )
            for point, spec in profile.points.items()
        ]
        # Imported here: gpiozero costs memory a site without contacts does not pay.
        from agent.sensors.gpio import ContactReader

        try:
            reader = ContactReader(
                device.pins, pull_up={p: s.pull_up for p, s in profile.points.items()}
            )
        except Exception as err:  # gpiozero raises many types for a missing/busy pin
            self.health.ok, self.health.last_error = False, f"cannot open pins: {err}"
            log.error("device %s: %s", device.id, self.health.last_error)
            raise
        try:
            while not self._stopping:
                levels = reader.read()
                now, mono = self._clock.now(), self._clock.monotonic()
                self.health.answered(now)
                for ev in self._evaluators:
                    transition = ev.feed(closed=levels[ev.point], now=now, mono=mono)
                    if transition is not None:
                        self._sink.transition(transition)
                await asyncio.sleep(device.poll_ms / 1000)
        finally:
            reader.close()
