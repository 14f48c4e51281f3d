"""Which points a device serves: a point it does not serve is unknown; a required one raises
the device's ``profile_mismatch`` alarm. Pure, time passed in."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from agent.events import AlarmTransition
from protocol import Severity, Transition
from siteconfig import ModbusPoint, SnmpPoint

POINT = "profile"
ALARM_TYPE = "profile_mismatch"


def unserved(points: Mapping[str, ModbusPoint | SnmpPoint], reading: Collection[str]) -> list[str]:
    """The profile's points a reading has no value for (a table column: no row at all)."""
    rows = {name.split(".", 1)[0] for name in reading}
    return [name for name in points if name not in reading and name not in rows]


class ServedEvaluator:
    """Raises ``profile_mismatch`` while the device does not serve a point its profile marks
    required (one alarm per device, whichever points are missing); clears it once it serves
    them all."""

    def __init__(
        self,
        *,
        equipment_id: str,
        points: Mapping[str, ModbusPoint | SnmpPoint],
        alarm_active: bool = False,
    ) -> None:
        self.equipment_id = equipment_id
        self._points = points
        self.alarm_active = alarm_active

    def feed(self, missing: Collection[str], *, now: datetime) -> AlarmTransition | None:
        """The points one answered poll had no value for."""
        absent = [name for name in missing if self._points[name].required]
        if bool(absent) == self.alarm_active:
            return None
        self.alarm_active = bool(absent)
        if absent:
            wanted = ", ".join(f"{n} ({_where(self._points[n])})" for n in absent)
            reason = f"{self.equipment_id} does not serve what its profile requires: {wanted}"
        else:
            reason = f"{self.equipment_id} serves every point its profile requires"
        return AlarmTransition(
            equipment_id=self.equipment_id,
            point=POINT,
            alarm_type=ALARM_TYPE,
            transition=Transition.RAISED if absent else Transition.CLEARED,
            severity=Severity.MAJOR,
            value=None,
            reason=reason[:500],
            ts=now,
        )


def _where(point: ModbusPoint | SnmpPoint) -> str:
    if isinstance(point, SnmpPoint):
        return point.oid
    return f"function {point.function} address {point.address}"
