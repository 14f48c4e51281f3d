"""Alarms that clear by themselves: raised by a trap or a syslog line with ``expire_s`` and
nothing else to clear them, they clear that long after the last notice raising them. Pure,
time passed in."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from agent.events import AlarmTransition
from protocol import Transition

Identity = tuple[str, str, str]  # equipment, point, alarm type


class Expiries:
    """When each self-clearing alarm is due to clear (monotonic seconds)."""

    def __init__(self) -> None:
        self._due: dict[Identity, tuple[float, AlarmTransition]] = {}

    def follow(self, transition: AlarmTransition, *, expire_s: float | None, mono: float) -> None:
        """A transition heard: a raise with ``expire_s`` (re)starts its clock; a clear stops it."""
        identity = (transition.equipment_id, transition.point, transition.alarm_type)
        if transition.transition is Transition.RAISED and expire_s is not None:
            self._due[identity] = (mono + expire_s, transition)
        else:
            self._due.pop(identity, None)

    def next_due(self) -> float | None:
        """The earliest due time, if any."""
        return min((due for due, _ in self._due.values()), default=None)

    def expired(self, *, mono: float, now: datetime) -> list[AlarmTransition]:
        """The clears of every alarm due by ``mono``, forgotten once returned."""
        out = []
        for identity, (due, raised) in list(self._due.items()):
            if due > mono:
                continue
            del self._due[identity]
            out.append(
                dataclasses.replace(
                    raised,
                    transition=Transition.CLEARED,
                    value=None,
                    reason=f"{raised.alarm_type} expired: no notice raising it since"[:500],
                    ts=now,
                )
            )
        return out
