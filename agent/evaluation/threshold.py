"""Edge evaluation of measured values: thresholds with hysteresis and delays; bit alarms and
enumerated values; telemetry with period and deadband. Pure, clock injected."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from agent.events import AlarmTransition
from protocol import Transition
from siteconfig.profiles import BitAlarm, EqualsAlarm, Telemetry, ThresholdAlarm


class ThresholdEvaluator:
    """Raise past ``raise_at``; clear only past ``clear_at`` (the hysteresis band holds)."""

    def __init__(
        self, *, equipment_id: str, point: str, alarm: ThresholdAlarm, alarm_active: bool = False
    ) -> None:
        self.equipment_id = equipment_id
        self.point = point
        self._alarm = alarm
        self.alarm_active = alarm_active
        self._since: float | None = None

    @property
    def alarm_type(self) -> str:
        """The alarm's type."""
        return self._alarm.alarm_type

    def adopt(self, active: bool) -> None:
        """Take the alarm's state from elsewhere (a trap raised or cleared it): the next
        value is judged from there, its delays starting afresh."""
        if active != self.alarm_active:
            self.alarm_active, self._since = active, None

    def _beyond(self, value: float, bound: float) -> bool:
        return value >= bound if self._alarm.direction == "above" else value <= bound

    def feed(self, *, value: float, now: datetime, mono: float) -> AlarmTransition | None:
        """One measurement; a transition once its condition held for its delay."""
        a = self._alarm
        if self.alarm_active:
            # Cleared only once back past the clear bound: between the two, nothing moves.
            wants_change = value <= a.clear_at if a.direction == "above" else value >= a.clear_at
            delay = a.clear_delay_s
        else:
            wants_change = self._beyond(value, a.raise_at)
            delay = a.raise_delay_s
        if not wants_change:
            self._since = None
            return None
        if self._since is None:
            self._since = mono
        if mono - self._since < delay:
            return None
        self._since = None
        self.alarm_active = not self.alarm_active
        bound = a.raise_at if self.alarm_active else a.clear_at
        word = (
            ("above" if a.direction == "above" else "below") if self.alarm_active else "back past"
        )
        return AlarmTransition(
            equipment_id=self.equipment_id,
            point=self.point,
            alarm_type=a.alarm_type,
            transition=Transition.RAISED if self.alarm_active else Transition.CLEARED,
            severity=a.severity,
            value=value,
            reason=f"{self.point} = {value:g}, {word} {bound:g}",
            ts=now,
        )


class BitEvaluator:
    """An alarm while a bit has the configured value, after its delays."""

    def __init__(
        self, *, equipment_id: str, point: str, alarm: BitAlarm, alarm_active: bool = False
    ) -> None:
        self.equipment_id = equipment_id
        self.point = point
        self._alarm = alarm
        self.alarm_active = alarm_active
        self._since: float | None = None

    @property
    def alarm_type(self) -> str:
        """The alarm's type."""
        return self._alarm.alarm_type

    def adopt(self, active: bool) -> None:
        """Take the alarm's state from elsewhere (a trap raised or cleared it)."""
        if active != self.alarm_active:
            self.alarm_active, self._since = active, None

    def feed(self, *, value: bool, now: datetime, mono: float) -> AlarmTransition | None:
        """One reading of the bit."""
        condition = value == self._alarm.when
        if condition == self.alarm_active:
            self._since = None
            return None
        if self._since is None:
            self._since = mono
        delay = self._alarm.raise_delay_s if condition else self._alarm.clear_delay_s
        if mono - self._since < delay:
            return None
        self._since = None
        self.alarm_active = condition
        return AlarmTransition(
            equipment_id=self.equipment_id,
            point=self.point,
            alarm_type=self._alarm.alarm_type,
            transition=Transition.RAISED if condition else Transition.CLEARED,
            severity=self._alarm.severity,
            value=value,
            reason=f"{self.point} is {value}",
            ts=now,
        )


class EqualsEvaluator:
    """An alarm while an enumerated value is one of ``equals`` (battery status low = 3), after
    its delays; with ``only_if``, only while another point of the same row has one of its
    values (an interface down counts only while administratively up)."""

    def __init__(
        self, *, equipment_id: str, point: str, alarm: EqualsAlarm, alarm_active: bool = False
    ) -> None:
        self.equipment_id = equipment_id
        self.point = point
        self._bit = BitEvaluator(
            equipment_id=equipment_id, point=point, alarm=alarm.as_bit(), alarm_active=alarm_active
        )
        self._equals = frozenset(float(v) for v in alarm.equals)
        self._condition: tuple[str, frozenset[float]] | None = None
        if alarm.only_if is not None:
            # A table row "<point>.<index>" is conditioned on the same row of the other column.
            _, dot, row = point.partition(".")
            other = f"{alarm.only_if.point}.{row}" if dot else alarm.only_if.point
            self._condition = (other, frozenset(float(v) for v in alarm.only_if.equals))

    @property
    def alarm_active(self) -> bool:
        """Whether the alarm is raised."""
        return self._bit.alarm_active

    @property
    def alarm_type(self) -> str:
        """The alarm's type."""
        return self._bit.alarm_type

    def adopt(self, active: bool) -> None:
        """Take the alarm's state from elsewhere (a trap raised or cleared it)."""
        self._bit.adopt(active)

    def feed(
        self,
        *,
        value: float | bool,
        values: Mapping[str, float | bool],
        now: datetime,
        mono: float,
    ) -> AlarmTransition | None:
        """One reading, with the other values of the same poll (for ``only_if``)."""
        holds = float(value) in self._equals
        if holds and self._condition is not None:
            other, allowed = self._condition
            holds = other in values and float(values[other]) in allowed
        transition = self._bit.feed(value=holds, now=now, mono=mono)
        if transition is None:
            return None
        # The enumerated value, not its truth ("output_source = 5", not "is True").
        listed = ", ".join(f"{v:g}" for v in sorted(self._equals))
        word = "one of" if transition.transition is Transition.RAISED else "no longer one of"
        return dataclasses.replace(
            transition, value=value, reason=f"{self.point} = {float(value):g}, {word} {listed}"
        )


class TelemetryGate:
    """Lets a value through when it moved past the deadband or the period has passed."""

    def __init__(self, spec: Telemetry) -> None:
        self._spec = spec
        self._last: float | None = None
        self._last_mono = 0.0

    def admit(self, value: float, *, mono: float) -> bool:
        """True when this value should be sent."""
        due = self._last is None or mono - self._last_mono >= self._spec.period_s
        moved = self._last is not None and abs(value - self._last) > self._spec.deadband
        if due or moved:
            self._last, self._last_mono = value, mono
            return True
        return False
