"""Edge evaluation of a dry contact: debounce, then raise/clear delays. Pure, clock injected."""

from __future__ import annotations

from datetime import datetime

from agent.events import AlarmTransition
from protocol import Transition
from siteconfig.profiles import ContactPoint


class ContactEvaluator:
    """Turns raw switch readings (closed=True) into alarm transitions."""

    def __init__(
        self,
        *,
        equipment_id: str,
        point: str,
        spec: ContactPoint,
        alarm_active: bool = False,
    ) -> None:
        self.equipment_id = equipment_id
        self.point = point
        self._spec = spec
        self.alarm_active = alarm_active
        self._raw: bool | None = None
        self._raw_since_mono = 0.0
        self._condition_since_mono: float | None = None
        self.last_closed: bool | None = None

    def feed(self, *, closed: bool, now: datetime, mono: float) -> AlarmTransition | None:
        """One reading; returns a transition when the debounced, delayed state changes."""
        if closed != self._raw:
            self._raw = closed
            self._raw_since_mono = mono
        if mono - self._raw_since_mono < self._spec.debounce_ms / 1000:
            return None  # still bouncing
        self.last_closed = closed
        alarm = self._spec.alarm
        condition = closed == (alarm.when == "closed")
        if condition == self.alarm_active:
            self._condition_since_mono = None
            return None
        if self._condition_since_mono is None:
            self._condition_since_mono = self._raw_since_mono
        delay = alarm.raise_delay_s if condition else alarm.clear_delay_s
        if mono - self._condition_since_mono < delay:
            return None
        self.alarm_active = condition
        self._condition_since_mono = None
        return AlarmTransition(
            equipment_id=self.equipment_id,
            point=self.point,
            alarm_type=alarm.alarm_type,
            transition=Transition.RAISED if condition else Transition.CLEARED,
            severity=alarm.severity,
            value=closed,
            reason=f"contact {self.point} {'closed' if closed else 'open'}",
            ts=now,
        )
