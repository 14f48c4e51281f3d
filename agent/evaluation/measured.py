"""Every point of a measured device (Modbus registers and bits, SNMP OIDs and table columns):
readings in, alarm transitions and telemetry samples out. Pure, time passed in.

What a point means comes from its profile: a threshold, a bit or an enumerated value makes an
alarm, a ``telemetry`` section makes samples, ``rate`` turns a counter into a rate. Table rows
(``<point>.<index>``) appear as the device reports them; each gets its evaluators on its first
value, as it means what its column means.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from agent.evaluation.threshold import (
    BitEvaluator,
    EqualsEvaluator,
    TelemetryGate,
    ThresholdEvaluator,
)
from agent.events import AlarmTransition, Sample
from siteconfig.profiles import BitAlarm, EqualsAlarm, ModbusPoint, SnmpPoint, ThresholdAlarm

Point = ModbusPoint | SnmpPoint
PointEvaluator = ThresholdEvaluator | BitEvaluator | EqualsEvaluator


@dataclass
class Evaluated:
    """What one poll of a device gave."""

    # Numeric values by point (text points left out, counters as rates).
    values: dict[str, float | bool] = field(default_factory=dict)
    transitions: list[AlarmTransition] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


def point_evaluator(
    *, equipment_id: str, name: str, point: Point, alarm_active: bool = False
) -> PointEvaluator | None:
    """The evaluator of a point's alarm, if it has one."""
    alarm = point.alarm
    if isinstance(alarm, ThresholdAlarm):
        return ThresholdEvaluator(
            equipment_id=equipment_id, point=name, alarm=alarm, alarm_active=alarm_active
        )
    if isinstance(alarm, BitAlarm):
        return BitEvaluator(
            equipment_id=equipment_id, point=name, alarm=alarm, alarm_active=alarm_active
        )
    if isinstance(alarm, EqualsAlarm):
        return EqualsEvaluator(
            equipment_id=equipment_id, point=name, alarm=alarm, alarm_active=alarm_active
        )
    return None


class CounterRates:
    """Counters marked ``rate`` as per-second rates since the previous poll; a first read, or a
    counter that went backwards (wrapped, device rebooted), gives no value this time."""

    def __init__(self) -> None:
        self._previous: dict[str, tuple[float, float]] = {}

    def rate(self, name: str, value: float, *, mono: float) -> float | None:
        """The rate of ``name`` since its previous value, if there is one to give."""
        before = self._previous.get(name)
        self._previous[name] = (float(value), mono)
        if before is not None and value >= before[0] and mono > before[1]:
            return (float(value) - before[0]) / (mono - before[1])
        return None


class MeasuredEvaluation:
    """The evaluators of one device's points, built from its profile."""

    def __init__(
        self,
        *,
        equipment_id: str,
        points: Mapping[str, Point],
        active_points: Collection[str] = (),
    ) -> None:
        self.equipment_id = equipment_id
        self._points = points
        # Points with an alarm active when evaluation began (from the outbox, or before a
        # restart): their evaluators start raised, so that a return to normal clears them.
        self._active_points = frozenset(active_points)
        self._evaluators: dict[str, PointEvaluator] = {}
        self._gates: dict[str, TelemetryGate] = {}
        self._prepared: set[str] = set()
        self._rates = CounterRates()
        self.values: dict[str, float | bool] = {}

    def feed(
        self,
        reading: Mapping[str, float | bool | str],
        *,
        now: datetime,
        mono: float,
        active: Collection[tuple[str, str]] | None = None,
    ) -> Evaluated:
        """One poll's values: the transitions they cause and the samples worth sending.

        ``active``: the (point, alarm type) pairs active for this device now, whatever raised
        them. An evaluator that disagrees adopts that state first, so that a poll reconciles
        what a trap said: a trap-raised alarm is cleared by a normal value, a trap-cleared
        one raised again by a value still in alarm."""
        out = Evaluated(values=self._numeric(reading, mono=mono))
        self.values = out.values
        for name, value in out.values.items():
            spec = self._spec_of(name)
            if spec is None:
                continue
            if name not in self._prepared:
                self._prepare(name, spec)
            evaluator = self._evaluators.get(name)
            if active is not None and evaluator is not None:
                evaluator.adopt((name, evaluator.alarm_type) in active)
            transition = self._evaluate(name, value, out.values, now=now, mono=mono)
            if transition is not None:
                out.transitions.append(transition)
            gate = self._gates.get(name)
            if gate is not None and gate.admit(float(value), mono=mono):
                out.samples.append(
                    Sample(
                        equipment_id=self.equipment_id,
                        point=name,
                        value=float(value),
                        unit=spec.unit,
                        ts=now,
                    )
                )
        return out

    def _spec_of(self, name: str) -> Point | None:
        # A table row "<point>.<index>" means what its column means.
        return self._points.get(name) or self._points.get(name.split(".", 1)[0])

    def _numeric(
        self, reading: Mapping[str, float | bool | str], *, mono: float
    ) -> dict[str, float | bool]:
        out: dict[str, float | bool] = {}
        for name, value in reading.items():
            if isinstance(value, str):
                continue
            spec = self._spec_of(name)
            if not (isinstance(spec, SnmpPoint) and spec.rate) or isinstance(value, bool):
                out[name] = value
                continue
            rate = self._rates.rate(name, value, mono=mono)
            if rate is not None:
                out[name] = rate
        return out

    def _prepare(self, name: str, point: Point) -> None:
        self._prepared.add(name)
        evaluator = point_evaluator(
            equipment_id=self.equipment_id,
            name=name,
            point=point,
            alarm_active=name in self._active_points,
        )
        if evaluator is not None:
            self._evaluators[name] = evaluator
        is_bit = isinstance(point, ModbusPoint) and point.is_bit
        if point.telemetry is not None and not is_bit:
            self._gates[name] = TelemetryGate(point.telemetry)

    def _evaluate(
        self,
        name: str,
        value: float | bool,
        values: Mapping[str, float | bool],
        *,
        now: datetime,
        mono: float,
    ) -> AlarmTransition | None:
        evaluator = self._evaluators.get(name)
        if isinstance(evaluator, EqualsEvaluator):
            return evaluator.feed(value=value, values=values, now=now, mono=mono)
        if isinstance(evaluator, ThresholdEvaluator):
            # A threshold on a register never sees a bool; a stray one is not a measure.
            if isinstance(value, bool):
                return None
            return evaluator.feed(value=value, now=now, mono=mono)
        if isinstance(evaluator, BitEvaluator):
            return evaluator.feed(value=bool(value), now=now, mono=mono)
        return None
