"""The alarms active when sensing started."""

from __future__ import annotations

from collections.abc import Iterable

from protocol import AlarmSnapshot

Identity = tuple[str, str, str]  # equipment, point, alarm type


class ActiveAlarms:
    """What a poller's evaluators start from: the alarms active when the agent started (from
    its outbox), so that a return to normal clears them."""

    def __init__(self, initial: Iterable[AlarmSnapshot] = ()) -> None:
        self._active: set[Identity] = {(a.equipment_id, a.point, a.alarm_type) for a in initial}

    def __contains__(self, identity: Identity) -> bool:
        return identity in self._active

    def points_of(self, equipment_id: str) -> set[str]:
        """The points of one equipment with an alarm active."""
        return {point for e, point, _ in self._active if e == equipment_id}
