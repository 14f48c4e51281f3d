"""SNMP notifications to alarm transitions, through the traps section of the sender's profile.
Pure, time passed in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.events import AlarmTransition
from agent.sensors.observations import SNMP_TRAP_OID, TrapNotification
from protocol import Transition
from siteconfig import SnmpDevice, SnmpProfile, SnmpTrap, SnmpV2c, SnmpV3


@dataclass(frozen=True)
class TrapSource:
    """A device whose notifications are accepted, and what they mean."""

    device: SnmpDevice
    profile: SnmpProfile


@dataclass(frozen=True)
class Unmapped:
    """A notification that means nothing here, and why (``category``: the reason without its
    particulars, for counting)."""

    reason: str
    category: str = "unknown sender"


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
    """Which device sent a notification, and which alarm its profile says the notification
    raises or clears.

    SNMPv3: the device whose ``auth`` names the notification's engine id and user (a device
    without an engine id is found by address, as below). v2c: the device at the sender's
    address (its polled ``host``, or ``traps.sources``); several devices behind one address
    are told apart by the community they are polled with."""

    def __init__(
        self, sources: Sequence[TrapSource], *, addresses: Mapping[str, str] | None = None
    ) -> None:
        self._sources = list(sources)
        by_id = {s.device.id: s for s in sources}
        self._by_address: dict[str, list[TrapSource]] = {}
        for s in sources:
            self._by_address.setdefault(s.device.host, []).append(s)
        for address, device_id in (addresses or {}).items():
            if device_id in by_id and by_id[device_id] not in self._by_address.get(address, []):
                self._by_address.setdefault(address, []).append(by_id[device_id])
        self._by_engine: dict[tuple[str, str], TrapSource] = {}
        for s in sources:
            auth = s.device.auth
            if isinstance(auth, SnmpV3) and auth.engine_id is not None:
                self._by_engine[(_hex(auth.engine_id), auth.user)] = s

    def source_of(self, notification: TrapNotification) -> TrapSource | Unmapped:
        """The device that sent a notification, or why none is found."""
        if notification.user is not None:
            engine = _hex(notification.engine_id or "")
            hit = self._by_engine.get((engine, notification.user))
            if hit is not None:
                return hit
            # Only devices that declare no engine id may be found by their address.
            candidates = [
                s
                for s in self._by_address.get(notification.host, [])
                if not (isinstance(s.device.auth, SnmpV3) and s.device.auth.engine_id)
            ]
            if len(candidates) == 1:
                return candidates[0]
            return Unmapped(
                f"no device with engine id {engine or '?'} and user {notification.user}"
            )
        candidates = self._by_address.get(notification.host, [])
        if len(candidates) > 1:
            candidates = [
                s
                for s in candidates
                if isinstance(s.device.auth, SnmpV2c)
                and s.device.auth.community == notification.community
            ]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates and notification.host not in self._by_address:
            return Unmapped("no device at this address")
        return Unmapped(
            f"several devices at this address, none polled with community {notification.community}"
        )

    def expire_s(self, transition: AlarmTransition) -> float | None:
        """How long after it an alarm this evaluator raised clears by itself, if it does."""
        source = next((s for s in self._sources if s.device.id == transition.equipment_id), None)
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
        source = self.source_of(notification)
        if isinstance(source, Unmapped):
            return Unmapped(f"{source.reason} {notification.trap_oid or '?'}")
        trap = match_trap(source.profile.traps, notification.var_binds)
        if trap is None:
            return Unmapped(
                f"unmapped trap oid {notification.trap_oid or '?'}", "unmapped trap oid"
            )
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


def _hex(engine_id: str) -> str:
    return engine_id.lower().removeprefix("0x").replace(":", "")
