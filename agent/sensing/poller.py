"""What every device poller is: one task per device that owns its health, and a stop that
always ends."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from agent.events import SensingSink
from agent.sensing.active import ActiveAlarms
from clocks import Clock
from protocol import DeviceHealth
from siteconfig import Device

log = logging.getLogger(__name__)

# A stopped poller ends within this long, or is left behind (and logged) so that the agent
# still stops: a reload, a restart by the supervisor or SIGTERM never waits on a driver.
STOP_WITHIN_S = 5.0
# A stop cancels its poller again this often: a driver may swallow a cancellation.
_RECANCEL_S = 0.1


@dataclass
class PointValue:
    """A point's live value, for ``shelterwatch agent check``."""

    device_id: str
    point: str
    value: float | bool | None
    alarm_active: bool
    at: datetime | None
    # The device answers but does not serve this point: its value is unknown.
    unknown: bool = False


@dataclass
class PollerHealth:
    """How a device's polls have gone, as the heartbeat and ``agent check`` report it."""

    ok: bool = False
    last_ok: datetime | None = None
    failures: int = 0
    last_error: str | None = None
    polls_ok: int = 0
    polls_failed: int = 0
    # The points the device did not serve at its last answer.
    unknown: list[str] = field(default_factory=list)

    def answered(self, now: datetime, *, unknown: list[str] | None = None) -> None:
        """A poll that worked (``unknown``: the points it had no value for)."""
        self.ok, self.last_ok, self.failures, self.last_error = True, now, 0, None
        self.polls_ok += 1
        self.unknown = list(unknown or [])

    def failed(self, error: str) -> None:
        """A poll that failed, and why."""
        self.ok, self.failures, self.last_error = False, self.failures + 1, error[:500]
        self.polls_failed += 1

    def report(self, device_id: str) -> DeviceHealth:
        """As the wire contract carries it."""
        return DeviceHealth(
            device_id=device_id,
            ok=self.ok,
            last_ok=self.last_ok,
            consecutive_failures=self.failures,
            last_error=self.last_error,
            polls_ok=self.polls_ok,
            polls_failed=self.polls_failed,
            points_unknown=self.unknown,
        )


class Poller(ABC):
    """One device's task (``device-<id>``): polls, evaluates, and reports to the sink."""

    def __init__(
        self, device: Device, *, sink: SensingSink, clock: Clock, active: ActiveAlarms
    ) -> None:
        self.device = device
        self.health = PollerHealth()
        self._sink = sink
        self._clock = clock
        self._active = active
        self._task: asyncio.Task[None] | None = None
        # Set by ``stop``; each poll loop looks at it every turn, so that a cancellation a
        # driver swallowed still ends the loop.
        self._stopping = False

    @property
    def task(self) -> asyncio.Task[None]:
        """The running task (``start`` first)."""
        assert self._task is not None, "not started"
        return self._task

    @property
    def polls(self) -> int:
        """Polls done, failed ones included: grows while the poller works (the supervisor
        watches it)."""
        return self.health.polls_ok + self.health.polls_failed

    def start(self) -> None:
        """Start the device's task in the running loop."""
        self._task = asyncio.create_task(self._run(), name=f"device-{self.device.id}")

    async def stop(self, *, within_s: float = STOP_WITHIN_S) -> bool:
        """Cancel the task and wait for it to end, ``within_s`` at most; True once it ended.

        The task is cancelled again until it ends: pymodbus connects through
        ``asyncio.wait_for``, which on Python 3.11 returns the connect's outcome when the
        cancellation arrives in the same turn of the loop as a failed connect; pymodbus then
        says "not connected" and the cancellation is lost (the agent used to hang on SIGTERM
        once its broker, a Modbus TCP device and an RTU line had all gone).
        """
        self._stopping = True
        task = self._task
        if task is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while not task.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.error(
                    "device %s: its poller is still running %.1f s after its stop: left behind",
                    self.device.id,
                    within_s,
                )
                return False
            task.cancel()
            await asyncio.wait({task}, timeout=min(_RECANCEL_S, remaining))
        if not task.cancelled():
            # Retrieved, not raised: a poller that died was reported (and its error logged)
            # by the supervisor.
            task.exception()
        return True

    def device_health(self) -> DeviceHealth:
        """This device's poll health."""
        return self.health.report(self.device.id)

    @abstractmethod
    def live_values(self) -> list[PointValue]:
        """Each point's last value."""

    @abstractmethod
    async def _run(self) -> None:
        """The task: polls until cancelled."""
