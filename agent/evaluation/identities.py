"""Which alarms a device can raise, by its profile: what a reload checks before clearing the
alarms nothing can clear any more, and what the clear-path test walks."""

from __future__ import annotations

from agent.evaluation.comm import ALARM_TYPE as COMM_ALARM
from agent.evaluation.comm import POINT as COMM_POINT
from agent.evaluation.served import ALARM_TYPE as MISMATCH_ALARM
from agent.evaluation.served import POINT as MISMATCH_POINT
from siteconfig import GpioProfile, Profile, SnmpProfile

AlarmKey = tuple[str, str]  # point, alarm type


def alarm_identities(profile: Profile) -> set[AlarmKey]:
    """Every (point, alarm type) a device of this profile can raise: its points' alarms, its
    traps', the communication failure of a device read over a link, and its profile mismatch
    when some point is required. A table point's rows
    (``<point>.<index>``) are named by their column."""
    out = {(name, p.alarm.alarm_type) for name, p in profile.points.items() if p.alarm}
    if isinstance(profile, SnmpProfile):
        out |= {(trap.point, trap.alarm_type) for trap in profile.traps}
    if not isinstance(profile, GpioProfile):
        out.add((COMM_POINT, COMM_ALARM))
        if any(p.required for p in profile.points.values()):
            out.add((MISMATCH_POINT, MISMATCH_ALARM))
    return out


def raises(profile: Profile, point: str, alarm_type: str) -> bool:
    """Whether a device of this profile can raise this alarm on this point (or table row)."""
    column = point.split(".", 1)[0]
    return (column, alarm_type) in alarm_identities(profile)
