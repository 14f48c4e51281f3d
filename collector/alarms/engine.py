"""The alarm engine: applies ordered edge events to alarms (one open alarm per identity)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.alarms.listener import AlarmChange, AlarmListener
from collector.alarms.models import Alarm, AlarmHistory
from protocol import AlarmEvent, AlarmSnapshot, AlarmState, Transition

# Open = not cleared; spelled as IN so the identity index is used (cleared rows pile up).
OPEN_STATES = (AlarmState.ACTIVE.value, AlarmState.UNKNOWN.value)
AGENT_EQUIPMENT = "agent"
UNREACHABLE_TYPE = "agent_unreachable"


class AlarmEngine:
    """Stateless: everything lives in the database, so any instance can apply any stream."""

    def __init__(self, listeners: Sequence[AlarmListener] = ()) -> None:
        self._listeners = list(listeners)

    def apply_event(
        self, session: Session, *, event: AlarmEvent, agent_id: str, now: datetime
    ) -> None:
        """Apply one alarm transition (events arrive here in seq order per stream)."""
        alarm = self._open_alarm(
            session, event.site_id, event.equipment_id, event.point, event.alarm_type
        )
        value = json.dumps(event.value)
        if event.transition is Transition.RAISED:
            if alarm is None:
                alarm = Alarm(
                    site_id=event.site_id,
                    agent_id=agent_id,
                    equipment_id=event.equipment_id,
                    point=event.point,
                    alarm_type=event.alarm_type,
                    state=AlarmState.ACTIVE.value,
                    severity=event.severity.value,
                    value=value,
                    reason=event.reason,
                    count=1,
                    first_seen=event.ts,
                    last_seen=event.ts,
                    test=event.test,
                )
                session.add(alarm)
                session.flush()
                self._changed(session, alarm, AlarmChange.RAISED, now, seq=event.seq)
                return
            change = (
                AlarmChange.SEVERITY_CHANGED
                if alarm.severity != event.severity.value
                else AlarmChange.RERAISED
            )
            alarm.count += 1
            alarm.last_seen = max(alarm.last_seen, event.ts)
            alarm.severity = event.severity.value
            alarm.value = value
            alarm.reason = event.reason
            alarm.state = AlarmState.ACTIVE.value
            self._changed(session, alarm, change, now, seq=event.seq)
            return
        if alarm is not None:
            self._clear(
                session, alarm, at=event.ts, change=AlarmChange.CLEARED, now=now, seq=event.seq
            )

    def reconcile(
        self,
        session: Session,
        *,
        site_id: str,
        agent_id: str,
        snapshot: Sequence[AlarmSnapshot],
        now: datetime,
    ) -> None:
        """Make the site's alarms match a birth snapshot (the full set of active alarms)."""
        wanted = {(a.equipment_id, a.point, a.alarm_type): a for a in snapshot}
        for alarm in self._site_open_alarms(session, site_id):
            key = (alarm.equipment_id, alarm.point, alarm.alarm_type)
            if alarm.equipment_id == AGENT_EQUIPMENT and alarm.alarm_type == UNREACHABLE_TYPE:
                continue
            if key not in wanted:
                self._clear(session, alarm, at=now, change=AlarmChange.RECONCILED_CLEAR, now=now)
            elif alarm.state == AlarmState.UNKNOWN.value:
                alarm.state = AlarmState.ACTIVE.value
                self._changed(session, alarm, AlarmChange.KNOWN_AGAIN, now)
            wanted.pop(key, None)
        for snap in wanted.values():
            alarm = Alarm(
                site_id=site_id,
                agent_id=agent_id,
                equipment_id=snap.equipment_id,
                point=snap.point,
                alarm_type=snap.alarm_type,
                state=AlarmState.ACTIVE.value,
                severity=snap.severity.value,
                value=json.dumps(snap.value),
                reason="active in the agent's birth snapshot",
                count=1,
                first_seen=snap.since,
                last_seen=snap.since,
            )
            session.add(alarm)
            session.flush()
            self._changed(session, alarm, AlarmChange.RAISED, now)

    def agent_unreachable(
        self, session: Session, *, site_id: str, agent_id: str, reason: str, now: datetime
    ) -> None:
        """Raise agent-unreachable and turn the site's alarms to unknown (never cleared)."""
        for alarm in self._site_open_alarms(session, site_id):
            if alarm.state == AlarmState.ACTIVE.value and alarm.alarm_type != UNREACHABLE_TYPE:
                alarm.state = AlarmState.UNKNOWN.value
                self._changed(session, alarm, AlarmChange.UNKNOWN, now)
        existing = self._open_alarm(session, site_id, AGENT_EQUIPMENT, "presence", UNREACHABLE_TYPE)
        if existing is None:
            alarm = Alarm(
                site_id=site_id,
                agent_id=agent_id,
                equipment_id=AGENT_EQUIPMENT,
                point="presence",
                alarm_type=UNREACHABLE_TYPE,
                state=AlarmState.ACTIVE.value,
                severity="major",
                reason=reason,
                count=1,
                first_seen=now,
                last_seen=now,
            )
            session.add(alarm)
            session.flush()
            self._changed(session, alarm, AlarmChange.RAISED, now)

    def agent_reachable(self, session: Session, *, site_id: str, now: datetime) -> None:
        """Clear agent-unreachable (the birth snapshot then reconciles the other alarms)."""
        existing = self._open_alarm(session, site_id, AGENT_EQUIPMENT, "presence", UNREACHABLE_TYPE)
        if existing is not None:
            self._clear(session, existing, at=now, change=AlarmChange.CLEARED, now=now)

    # -- internals -----------------------------------------------------------------------

    def _clear(
        self,
        session: Session,
        alarm: Alarm,
        *,
        at: datetime,
        change: AlarmChange,
        now: datetime,
        seq: int | None = None,
    ) -> None:
        alarm.state = AlarmState.CLEARED.value
        alarm.cleared_at = at
        alarm.last_seen = max(alarm.last_seen, at)
        self._changed(session, alarm, change, now, seq=seq)

    def _changed(
        self,
        session: Session,
        alarm: Alarm,
        change: AlarmChange,
        now: datetime,
        *,
        seq: int | None = None,
    ) -> None:
        session.add(
            AlarmHistory(
                alarm_id=alarm.id,
                at=now,
                change=change.value,
                severity=alarm.severity,
                value=alarm.value,
                seq=seq,
            )
        )
        for listener in self._listeners:
            listener.alarm_changed(session, alarm=alarm, change=change, now=now)

    @staticmethod
    def _open_alarm(
        session: Session, site_id: str, equipment_id: str, point: str, alarm_type: str
    ) -> Alarm | None:
        return session.scalars(
            select(Alarm).where(
                Alarm.site_id == site_id,
                Alarm.equipment_id == equipment_id,
                Alarm.point == point,
                Alarm.alarm_type == alarm_type,
                Alarm.state.in_(OPEN_STATES),
            )
        ).first()

    @staticmethod
    def _site_open_alarms(session: Session, site_id: str) -> list[Alarm]:
        return list(
            session.scalars(
                select(Alarm)
                .where(Alarm.site_id == site_id, Alarm.state.in_(OPEN_STATES))
                .order_by(Alarm.id)
            )
        )
