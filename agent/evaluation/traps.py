"""SNMP notifications to alarm transitions, through the traps section of the sender's profile.
Pure, time passed in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.events import AlarmTransition
from agent.sensors.observations import SNMP_TRAP_OID, TrapNotification
from protocol import Transition
from siteconfig import SnmpDevice, SnmpProfile, SnmpTrap


@dataclass(frozen=True)
class TrapSource:
    """A device whose notifications are accepted, and what they mean."""

    device: SnmpDevice
    profile: SnmpProfile


@dataclass(frozen=True)
class Unmapped:
    """A notification that means nothing here, and why."""

    reason: str


def match_trap(traps: Sequence[SnmpTrap], var_binds: Sequence[tuple[str, str]]) -> SnmpTrap | None:
    """The profile entry a notification's varbinds (dotted OID, text value) select, if any."""
    trap_oid = dict(var_binds).get(SNMP_TRAP_OID)
    for trap in traps:
        if trap.trap_oid != trap_oid:
            continue
        if trap.varbind_oid is None:
            return trap
        wanted = trap.varbind_oid
        if any(
            (oid == wanted or oid.startswith(wanted + ".")) and value == trap.varbind_equals
            for oid, value in var_binds
        ):
            return trap
    return None


class TrapEvaluator:
    """Which device sent a notification (its polled address, or ``traps.sources``), and which
    alarm its profile says the notification raises or clears."""

    def __init__(
        self, sources: Sequence[TrapSource], *, addresses: Mapping[str, str] | None = None
    ) -> None:
        self._by_host = {s.device.host: s for s in sources}
        by_id = {s.device.id: s for s in sources}
        for address, device_id in (addresses or {}).items():
            if device_id in by_id:
                self._by_host[address] = by_id[device_id]

    def expire_s(self, transition: AlarmTransition) -> float | None:
        """How long after it an alarm this evaluator raised clears by itself, if it does."""
        source = next(
            (s for s in self._by_host.values() if s.device.id == transition.equipment_id), None
        )
        if source is None:
            return None
        return max(
            (
                t.expire_s
                for t in source.profile.traps
                if (t.point, t.alarm_type) == (transition.point, transition.alarm_type)
                and t.expire_s is not None
            ),
            default=None,
        )

    def feed(self, notification: TrapNotification, *, now: datetime) -> AlarmTransition | Unmapped:
        """The transition a notification means, or why it means none."""
        source = self._by_host.get(notification.host)
        trap = match_trap(source.profile.traps, notification.var_binds) if source else None
        if source is None or trap is None:
            why = "no device at this address" if source is None else "unmapped trap oid"
            return Unmapped(f"{why} {notification.trap_oid or '?'}")
        return AlarmTransition(
            equipment_id=source.device.id,
            point=trap.point,
            alarm_type=trap.alarm_type,
            transition=Transition(trap.transition),
            severity=trap.severity,
            value=None,
            reason=f"snmp trap {trap.trap_oid} from {notification.host}"[:500],
            ts=now,
        )
