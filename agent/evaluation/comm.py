"""A device that stopped answering: its communication-failure alarm. Pure, time passed in."""

from __future__ import annotations

from datetime import datetime

from agent.events import AlarmTransition
from protocol import Severity, Transition

POINT = "comm"
ALARM_TYPE = "comm_failure"


class CommEvaluator:
    """Raises ``comm_failure`` once ``failures_to_raise`` polls in a row failed; the first
    answer afterwards clears it. A dead device is never silent."""

    def __init__(
        self, *, equipment_id: str, failures_to_raise: int, alarm_active: bool = False
    ) -> None:
        self.equipment_id = equipment_id
        self._failures_to_raise = failures_to_raise
        self.alarm_active = alarm_active
        self.failures = 0

    def failed(self, *, reason: str, now: datetime) -> AlarmTransition | None:
        """A poll that failed, and why."""
        self.failures += 1
        if self.failures < self._failures_to_raise or self.alarm_active:
            return None
        self.alarm_active = True
        return self._transition(Transition.RAISED, reason, now)

    def answered(self, *, now: datetime) -> AlarmTransition | None:
        """A poll that succeeded."""
        self.failures = 0
        if not self.alarm_active:
            return None
        self.alarm_active = False
        return self._transition(Transition.CLEARED, "answering again", now)

    def _transition(self, transition: Transition, reason: str, now: datetime) -> AlarmTransition:
        return AlarmTransition(
            equipment_id=self.equipment_id,
            point=POINT,
            alarm_type=ALARM_TYPE,
            transition=transition,
            severity=Severity.MAJOR,
            value=None,
            reason=f"device {self.equipment_id}: {reason}"[:500],
            ts=now,
        )
