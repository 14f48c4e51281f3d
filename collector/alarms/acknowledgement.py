"""Acknowledging an alarm (acquittement): someone at the NOC says "seen, I am on it".

An acknowledgement belongs to one occurrence: who, when, an optional note, shown to every
operator, in the alarm's history and on the live feed. It changes neither the alarm's state nor
its ticket nor the ticket's SLA clock; while it stands, the alarm raised again is still counted
and recorded on its ticket, but notifies nobody (``collector.tickets.flows.raised``). A new
occurrence (raised after a clear) starts unacknowledged; the same occurrence changing severity
keeps its acknowledgement (the one who took it sees the change on the feed). A cleared alarm
can be acknowledged too: a door opened at night and closed again is exactly what the morning
shift must be able to mark as seen. Withdrawing an acknowledgement takes a reason.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.alarms.engine import AlarmEngine
from collector.alarms.errors import AlreadyAcknowledged, NotAcknowledged
from collector.alarms.listener import AlarmChange
from collector.alarms.models import Alarm
from collector.alarms.service import get_alarm
from collector.identity.access import Action, Principal, require


def acknowledge(
    session: Session,
    *,
    alarm_id: int,
    principal: Principal,
    note: str | None,
    engine: AlarmEngine,
    now: datetime,
) -> Alarm:
    """Acknowledge an alarm in the caller's name; ``AlreadyAcknowledged`` names who did first."""
    require(principal, Action.ALARM_ACKNOWLEDGE)
    alarm = get_alarm(session, alarm_id=alarm_id, principal=principal, for_update=True)
    if alarm.is_acknowledged:
        raise AlreadyAcknowledged(alarm)
    alarm.acknowledged_by = principal.user_id
    alarm.acknowledged_at = now
    alarm.ack_note = note or None
    engine.operator_changed(
        session,
        alarm=alarm,
        change=AlarmChange.ACKNOWLEDGED,
        actor=principal.user_id,
        note=alarm.ack_note,
        now=now,
    )
    return alarm


def unacknowledge(
    session: Session,
    *,
    alarm_id: int,
    principal: Principal,
    reason: str,
    engine: AlarmEngine,
    now: datetime,
) -> Alarm:
    """Withdraw an alarm's acknowledgement, with a reason (kept in its history)."""
    require(principal, Action.ALARM_UNACKNOWLEDGE)
    alarm = get_alarm(session, alarm_id=alarm_id, principal=principal, for_update=True)
    if not alarm.is_acknowledged:
        raise NotAcknowledged(alarm)
    alarm.acknowledged_by = None
    alarm.acknowledged_at = None
    alarm.ack_note = None
    engine.operator_changed(
        session,
        alarm=alarm,
        change=AlarmChange.UNACKNOWLEDGED,
        actor=principal.user_id,
        note=reason,
        now=now,
    )
    return alarm
