"""What the Modbus and SNMP pollers share: poll with retries within a timeout, back off after
a failed poll, evaluate every point, and raise the device's communication failure."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Mapping
from typing import Protocol

from agent.evaluation import CommEvaluator, MeasuredEvaluation, ServedEvaluator, unserved
from agent.evaluation.comm import ALARM_TYPE as COMM_ALARM
from agent.evaluation.comm import POINT as COMM_POINT
from agent.evaluation.served import ALARM_TYPE as MISMATCH_ALARM
from agent.evaluation.served import POINT as MISMATCH_POINT
from agent.events import AlarmTransition, SensingSink
from agent.sensing.active import ActiveAlarms
from agent.sensing.poller import PointValue, Poller
from agent.sensors.errors import DeviceError
from clocks import Clock
from siteconfig import ModbusDevice, ModbusPoint, SnmpDevice, SnmpPoint

log = logging.getLogger(__name__)

Reading = Mapping[str, float | bool | str]


class Reader(Protocol):
    """A driver's reader of one device: every point in one call."""

    async def read(self) -> Reading:
        """One value per point; ``DeviceError`` says what failed."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class MeasuredPoller(Poller):
    """A device read over a network or a serial line, every ``poll_s``.

    A poll is tried ``retries`` more times, each within the reader's timeout; a failed poll
    waits ``poll_s`` doubled per failure in a row, up to ``backoff_max_s``; after
    ``comm_failure_after`` failed polls the device's ``comm_failure`` alarm is raised, and its
    first answer clears it. A dead device is never silent. A device that answers without
    serving some point leaves that point unknown (its alarm state as it was), and raises
    ``profile_mismatch`` when the point is required: that is no communication failure.
    """

    device: ModbusDevice | SnmpDevice

    def __init__(
        self,
        device: ModbusDevice | SnmpDevice,
        points: Mapping[str, ModbusPoint | SnmpPoint],
        *,
        sink: SensingSink,
        clock: Clock,
        active: ActiveAlarms,
    ) -> None:
        super().__init__(device, sink=sink, clock=clock, active=active)
        self._points = points
        self._evaluation: MeasuredEvaluation | None = None

    @abstractmethod
    def _open(self) -> tuple[Reader, float]:
        """The device's reader, and the timeout of one attempt at a poll."""

    def live_values(self) -> list[PointValue]:
        """Each point's value at the last poll that answered."""
        if self._evaluation is None:
            return []
        active = self._active.points_of(self.device.id)
        served = [
            PointValue(
                device_id=self.device.id,
                point=point,
                value=value,
                alarm_active=point in active,
                at=self.health.last_ok,
            )
            for point, value in self._evaluation.values.items()
        ]
        unknown = [
            PointValue(
                device_id=self.device.id,
                point=point,
                value=None,
                alarm_active=point in active,
                at=None,
                unknown=True,
            )
            for point in self.health.unknown
        ]
        return served + unknown

    def backoff_s(self) -> float:
        """How long to wait after the failed polls in a row so far."""
        device = self.device
        return float(min(device.backoff_max_s, device.poll_s * 2 ** (self.health.failures - 1)))

    async def _run(self) -> None:
        reader, timeout_s = self._open()
        try:
            await self._poll(reader, timeout_s)
        finally:
            reader.close()

    async def _poll(self, reader: Reader, timeout_s: float) -> None:
        device = self.device
        evaluation = MeasuredEvaluation(
            equipment_id=device.id,
            points=self._points,
            active_points=self._active.points_of(device.id),
        )
        self._evaluation = evaluation
        comm = CommEvaluator(
            equipment_id=device.id,
            failures_to_raise=device.comm_failure_after,
            alarm_active=(device.id, COMM_POINT, COMM_ALARM) in self._active,
        )
        served = ServedEvaluator(
            equipment_id=device.id,
            points=self._points,
            alarm_active=(device.id, MISMATCH_POINT, MISMATCH_ALARM) in self._active,
        )
        while not self._stopping:
            try:
                reading = await self._read_with_retries(reader, timeout_s)
            except DeviceError as err:
                if self._stopping:
                    break  # a stop the driver turned into a failure is no failed poll
                self.health.failed(str(err))
                log.warning("device %s: %s (%d in a row)", device.id, err, self.health.failures)
                self._emit(comm.failed(reason=str(err), now=self._clock.now()))
                await asyncio.sleep(self.backoff_s())
                continue
            now, mono = self._clock.now(), self._clock.monotonic()
            missing = unserved(self._points, reading)
            if missing != self.health.unknown:
                log.warning("device %s: points not served: %s", device.id, missing or "none")
            self.health.answered(now, unknown=missing)
            self._emit(comm.answered(now=now))
            self._emit(served.feed(missing, now=now))
            evaluated = evaluation.feed(
                reading, now=now, mono=mono, active=self._active.alarms_of(device.id)
            )
            for transition in evaluated.transitions:
                self._sink.transition(transition)
            if evaluated.samples:
                self._sink.samples(evaluated.samples)
            await asyncio.sleep(device.poll_s)

    async def _read_with_retries(self, reader: Reader, timeout_s: float) -> Reading:
        last: DeviceError | None = None
        for _ in range(self.device.retries + 1):
            try:
                # Not wait_for: on Python 3.11 it can swallow the stop's cancellation.
                async with asyncio.timeout(timeout_s):
                    return await reader.read()
            except TimeoutError:
                last = DeviceError(f"no answer within {self.device.timeout_s} s")
            except (DeviceError, OSError) as err:
                last = err if isinstance(err, DeviceError) else DeviceError(str(err))
        assert last is not None
        raise last

    def _emit(self, transition: AlarmTransition | None) -> None:
        if transition is not None:
            self._sink.transition(transition)
