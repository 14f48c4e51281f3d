"""The alarm engine: applies ordered edge events to alarms (one open alarm per identity)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.orm import Session

from collector.alarms.listener import AlarmChange, AlarmListener
from collector.alarms.models import Alarm, AlarmHistory
from collector.alarms.onsite import OnSite
from collector.alarms.rules import AlarmRules, load_rules
from collector.alarms.storms import group_storm
from protocol import AlarmEvent, AlarmSnapshot, AlarmState, Transition

# Open = not cleared; spelled as IN so the identity index is used (cleared rows pile up).
OPEN_STATES = (AlarmState.ACTIVE.value, AlarmState.UNKNOWN.value)
AGENT_EQUIPMENT = "agent"
UNREACHABLE_TYPE = "agent_unreachable"
# The agent sent what it may not (a foreign site, a malformed or refused message).
MISBEHAVING_TYPE = "agent_misbehaving"
# Applying one of the agent's events failed: its stream waits for the NOC.
QUARANTINED_TYPE = "stream_quarantined"
# Raised and cleared by the collector only, on the agent's pseudo-equipment: ingest refuses an
# agent's event or birth naming one, and a birth's snapshot never clears them.
COLLECTOR_ALARM_TYPES = frozenset({UNREACHABLE_TYPE, MISBEHAVING_TYPE, QUARANTINED_TYPE})
# A misbehaving agent's alarm clears once it has sent nothing refused for this long.
MISBEHAVING_QUIET = timedelta(minutes=15)
# History entries that are edge transitions (what flapping counts).
_TRANSITION_CHANGES = (
    "raised",
    "reraised",
    "severity_changed",
    "cleared",
    "suppressed",
    "flap_raised",
    "flap_cleared",
)


def _identity() -> tuple[ColumnElement[bool], ...]:
    return (
        Alarm.site_id == bindparam("site_id"),
        Alarm.equipment_id == bindparam("equipment_id"),
        Alarm.point == bindparam("point"),
        Alarm.alarm_type == bindparam("alarm_type"),
    )


# The hot path's statements are built once: building a select and its cache key costs several
# times more Python than running it (an alarm storm runs a dozen of them per event).
_OPEN_ALARM = select(Alarm).where(*_identity(), Alarm.state.in_(OPEN_STATES))
_LAST_OF_IDENTITY = select(Alarm).where(*_identity()).order_by(Alarm.id.desc())
_RECENT_TRANSITIONS = (
    select(func.count())
    .select_from(AlarmHistory)
    .join(Alarm, Alarm.id == AlarmHistory.alarm_id)
    .where(
        *_identity(),
        AlarmHistory.at >= bindparam("since"),
        AlarmHistory.change.in_(_TRANSITION_CHANGES),
    )
)
# By site only, the identity index's first column: asked with the alarm type as well, SQLite
# (no statistics) walks the type index instead, every alarm of that type at every site.
_SITE_OPEN = (
    select(Alarm)
    .where(Alarm.site_id == bindparam("site_id"), Alarm.state.in_(OPEN_STATES))
    .order_by(Alarm.id)
)
_UNSUPPRESSED_OF_TYPES = select(Alarm).where(
    Alarm.site_id == bindparam("site_id"),
    Alarm.alarm_type.in_(bindparam("alarm_types", expanding=True)),
    Alarm.state.in_(OPEN_STATES),
    Alarm.suppressed_by.is_(None),
    Alarm.id != bindparam("cause_id"),
)
_SYMPTOMS_OF = select(Alarm).where(
    Alarm.suppressed_by == bindparam("cause_id"), Alarm.state.in_(OPEN_STATES)
)


def _identity_of(event: AlarmEvent) -> dict[str, str]:
    return {
        "site_id": event.site_id,
        "equipment_id": event.equipment_id,
        "point": event.point,
        "alarm_type": event.alarm_type,
    }


class AlarmEngine:
    """Stateless: everything lives in the database, so any instance can apply any stream."""

    def __init__(
        self,
        listeners: Sequence[AlarmListener] = (),
        *,
        on_site: OnSite,
        rules: AlarmRules | None = None,
    ) -> None:
        """``on_site`` says who is expected at a site (planned works, inspections, dispatches):
        the collector wires it in (``collector.listeners.alarm_engine``)."""
        self._listeners = list(listeners)
        self._on_site = on_site
        self._rules = rules or load_rules()

    def apply_event(
        self,
        session: Session,
        *,
        event: AlarmEvent,
        agent_id: str,
        now: datetime,
        event_time: datetime | None = None,
    ) -> None:
        """Apply one alarm transition (events arrive here in seq order per stream).

        ``event_time`` (``collector.ingest.eventtime``: the edge time corrected by the agent's
        measured offset, or the receive time for an untrusted clock) dates the raise and the
        clear alike, and drives the windows (flapping, storms, planned works).
        """
        at = event_time or event.ts
        raised = event.transition is Transition.RAISED
        alarm = self._open_alarm(
            session, event.site_id, event.equipment_id, event.point, event.alarm_type
        )
        if alarm is not None and alarm.flapping:
            self._absorb_flap(session, alarm, raised=raised, event=event, at=at, now=now)
            return
        rule = self._rules.flapping
        recent = self._recent_transitions(
            session, event, since=at - timedelta(seconds=rule.window_s)
        )
        if recent + 1 >= rule.transitions and (alarm is not None or raised):
            if alarm is None:
                alarm = self._new_alarm(session, event, agent_id=agent_id, at=at)
                self._changed(session, alarm, AlarmChange.RAISED, now, at=at, seq=event.seq)
            else:
                self._absorb_flap(session, alarm, raised=raised, event=event, at=at, now=now)
            alarm.flapping = True
            alarm.edge_active = raised
            # A consequence of the event, not an edge transition of its own: no seq.
            self._changed(session, alarm, AlarmChange.FLAPPING, now, at=at)
            return
        value = json.dumps(event.value)
        if raised:
            if alarm is None:
                alarm = self._new_alarm(session, event, agent_id=agent_id, at=at)
                self._raised(session, alarm, now=now, at=at, seq=event.seq)
                return
            change = (
                AlarmChange.SEVERITY_CHANGED
                if alarm.severity != event.severity.value
                else AlarmChange.RERAISED
            )
            alarm.count += 1
            alarm.last_seen = max(alarm.last_seen, at)
            alarm.last_transition_at = at
            alarm.edge_active = True
            alarm.severity = event.severity.value
            alarm.value = value
            alarm.reason = event.reason
            alarm.state = AlarmState.ACTIVE.value
            self._changed(session, alarm, change, now, at=at, seq=event.seq)
            return
        if alarm is not None:
            self._clear(session, alarm, at=at, change=AlarmChange.CLEARED, now=now, seq=event.seq)
        else:
            # A clear with no open alarm still counts as a transition for flapping.
            self._record_orphan_clear(session, event, at=at)

    @contextmanager
    def prepared(
        self, session: Session, *, raises: Sequence[tuple[str, datetime]]
    ) -> Iterator[None]:
        """Apply a batch's alarm events inside this block; ``raises`` are their (site, event
        time). Who is expected on those sites is looked up once for the batch instead of for
        each new alarm (a storm raises thousands at sites where nobody is); forgotten when the
        block ends, so no window, inspection or dispatch added afterwards is missed."""
        if raises:
            self._on_site.prepare(
                session,
                site_ids=[site_id for site_id, _ in raises],
                since=min(at for _, at in raises),
            )
        try:
            yield
        finally:
            self._on_site.forget(session)

    def settle_flapping(self, session: Session, *, now: datetime) -> int:
        """Flapping alarms stable for the window go quiet: cleared if the edge says clear."""
        window = timedelta(seconds=self._rules.flapping.window_s)
        settled = 0
        for alarm in session.scalars(
            select(Alarm).where(
                Alarm.flapping.is_(True),
                Alarm.state.in_(OPEN_STATES),
                Alarm.last_transition_at <= now - window,
            )
        ):
            alarm.flapping = False
            settled += 1
            if alarm.edge_active:
                self._changed(session, alarm, AlarmChange.FLAPPING_SETTLED, now)
            else:
                self._clear(session, alarm, at=now, change=AlarmChange.CLEARED, now=now)
        return settled

    def test_became_real(self, session: Session, *, alarm: Alarm, now: datetime) -> None:
        """An inspection's test trigger not back to normal in time is a real incident."""
        alarm.test = False
        self._changed(session, alarm, AlarmChange.TEST_EXPIRED, now)

    def end_maintenance(self, session: Session, *, site_id: str, now: datetime) -> None:
        """Alarms still active at a site when its planned works end become incidents."""
        for alarm in session.scalars(
            select(Alarm).where(
                Alarm.site_id == site_id,
                Alarm.in_maintenance.is_(True),
                Alarm.state.in_(OPEN_STATES),
            )
        ):
            alarm.in_maintenance = False
            self._changed(session, alarm, AlarmChange.MAINTENANCE_ENDED, now)

    def operator_changed(
        self,
        session: Session,
        *,
        alarm: Alarm,
        change: AlarmChange,
        actor: str,
        note: str | None,
        now: datetime,
    ) -> None:
        """Record an operator's change of ``alarm`` (its acknowledgement) in its history, with
        who and why, and tell the listeners (the live feed shows it to every operator)."""
        self._changed(session, alarm, change, now, actor=actor, note=note)

    # -- correlation ---------------------------------------------------------------------

    def _new_alarm(
        self, session: Session, event: AlarmEvent, *, agent_id: str, at: datetime
    ) -> Alarm:
        alarm = Alarm(
            site_id=event.site_id,
            agent_id=agent_id,
            equipment_id=event.equipment_id,
            point=event.point,
            alarm_type=event.alarm_type,
            state=AlarmState.ACTIVE.value,
            severity=event.severity.value,
            value=json.dumps(event.value),
            reason=event.reason,
            count=1,
            first_seen=at,
            last_seen=at,
            last_transition_at=at,
            raised_at=at,
            # Triggers during an inspection of the site are test results, not incidents.
            test=event.test or self._inspected(session, event, at),
            edge_active=True,
            in_maintenance=self._muted(session, event, at),
        )
        session.add(alarm)
        session.flush()
        return alarm

    def _inspected(self, session: Session, event: AlarmEvent, at: datetime) -> bool:
        return self._on_site.inspected(session, site_id=event.site_id, at=at)

    def _muted(self, session: Session, event: AlarmEvent, at: datetime) -> bool:
        """Under planned works, or a door opened by a dispatched technician in their slot."""
        return self._on_site.muted(
            session,
            site_id=event.site_id,
            equipment_id=event.equipment_id,
            alarm_type=event.alarm_type,
            at=at,
        )

    def _raised(
        self, session: Session, alarm: Alarm, *, now: datetime, at: datetime, seq: int | None
    ) -> None:
        """A new occurrence: suppression either way round, then storms."""
        cause = self._open_cause(session, alarm)
        if cause is not None:
            alarm.suppressed_by = cause.id
            self._changed(session, alarm, AlarmChange.SUPPRESSED, now, at=at, seq=seq)
        else:
            self._changed(session, alarm, AlarmChange.RAISED, now, at=at, seq=seq)
        for symptom in self._open_symptoms(session, alarm):
            symptom.suppressed_by = alarm.id
            self._changed(session, symptom, AlarmChange.SUPPRESSED, now, at=at)
        self._storm(session, alarm, now=now, at=at)

    def _open_cause(self, session: Session, alarm: Alarm) -> Alarm | None:
        causes = self._rules.causes_of(alarm.alarm_type)
        if not causes:
            return None
        # The site's few open alarms, filtered here (see _SITE_OPEN), the first by id.
        return next(
            (
                a
                for a in self._site_open_alarms(session, alarm.site_id)
                if a.alarm_type in causes and a.id != alarm.id
            ),
            None,
        )

    def _open_symptoms(self, session: Session, cause: Alarm) -> list[Alarm]:
        symptoms = self._rules.symptoms_of(cause.alarm_type)
        if not symptoms:
            return []
        params = {"site_id": cause.site_id, "alarm_types": symptoms, "cause_id": cause.id}
        return list(session.scalars(_UNSUPPRESSED_OF_TYPES, params))

    def _storm(self, session: Session, alarm: Alarm, *, now: datetime, at: datetime) -> None:
        rule = self._rules.storm
        if alarm.alarm_type not in rule.alarm_types or alarm.suppressed_by is not None:
            return  # a symptom of a cause at its own site is not an outage of its own
        for member in group_storm(session, alarm, rule=rule, at=at):
            self._changed(session, member, AlarmChange.STORM_GROUPED, now, at=at)

    def _absorb_flap(
        self,
        session: Session,
        alarm: Alarm,
        *,
        raised: bool,
        event: AlarmEvent,
        at: datetime,
        now: datetime,
    ) -> None:
        alarm.edge_active = raised
        alarm.last_transition_at = at
        alarm.last_seen = max(alarm.last_seen, at)
        if raised:
            alarm.count += 1
        session.add(
            AlarmHistory(
                alarm_id=alarm.id,
                at=at,
                change="flap_raised" if raised else "flap_cleared",
                severity=alarm.severity,
                value=json.dumps(event.value),
                seq=event.seq,
            )
        )

    def _recent_transitions(self, session: Session, event: AlarmEvent, *, since: datetime) -> int:
        params = {**_identity_of(event), "since": since}
        return int(session.scalar(_RECENT_TRANSITIONS, params) or 0)

    def _record_orphan_clear(self, session: Session, event: AlarmEvent, *, at: datetime) -> None:
        last = session.scalars(_LAST_OF_IDENTITY, _identity_of(event)).first()
        if last is not None:
            session.add(
                AlarmHistory(
                    alarm_id=last.id,
                    at=at,
                    change=AlarmChange.CLEARED.value,
                    severity=last.severity,
                    seq=event.seq,
                )
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
            if alarm.equipment_id == AGENT_EQUIPMENT and alarm.alarm_type in COLLECTOR_ALARM_TYPES:
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
                raised_at=snap.since,
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
            alarm = self._new_collector_alarm(
                session,
                site_id=site_id,
                agent_id=agent_id,
                point="presence",
                alarm_type=UNREACHABLE_TYPE,
                reason=reason,
                now=now,
            )
            # A region's backhaul cut leaves many agents away at once: one generic incident.
            self._storm(session, alarm, now=now, at=now)

    def raise_collector_alarm(
        self,
        session: Session,
        *,
        site_id: str,
        agent_id: str,
        point: str,
        alarm_type: str,
        reason: str,
        now: datetime,
        count: int = 1,
        severity: str = "major",
    ) -> Alarm:
        """Raise an alarm the collector observes about an agent, or count ``count`` more on
        the one open: a flood makes one alarm with a count (one ticket), not a storm."""
        existing = self._open_alarm(session, site_id, AGENT_EQUIPMENT, point, alarm_type)
        if existing is not None:
            # No history row and no listener per repeat: they are the flood's cost.
            existing.count += count
            existing.last_seen = max(existing.last_seen, now)
            existing.reason = reason
            return existing
        return self._new_collector_alarm(
            session,
            site_id=site_id,
            agent_id=agent_id,
            point=point,
            alarm_type=alarm_type,
            reason=reason,
            now=now,
            count=count,
            severity=severity,
        )

    def _new_collector_alarm(
        self,
        session: Session,
        *,
        site_id: str,
        agent_id: str,
        point: str,
        alarm_type: str,
        reason: str,
        now: datetime,
        count: int = 1,
        severity: str = "major",
    ) -> Alarm:
        alarm = Alarm(
            site_id=site_id,
            agent_id=agent_id,
            equipment_id=AGENT_EQUIPMENT,
            point=point,
            alarm_type=alarm_type,
            state=AlarmState.ACTIVE.value,
            severity=severity,
            reason=reason,
            count=count,
            first_seen=now,
            last_seen=now,
            raised_at=now,
        )
        session.add(alarm)
        session.flush()
        self._changed(session, alarm, AlarmChange.RAISED, now)
        return alarm

    def clear_collector_alarm(
        self, session: Session, *, site_id: str, point: str, alarm_type: str, now: datetime
    ) -> bool:
        """Clear an alarm raised by ``raise_collector_alarm``; False when none is open."""
        existing = self._open_alarm(session, site_id, AGENT_EQUIPMENT, point, alarm_type)
        if existing is None:
            return False
        self._clear(session, existing, at=now, change=AlarmChange.CLEARED, now=now)
        return True

    def settle_misbehaving(self, session: Session, *, now: datetime) -> int:
        """Clear the misbehaving-agent alarms of agents quiet for ``MISBEHAVING_QUIET``."""
        quiet = session.scalars(
            select(Alarm).where(
                Alarm.equipment_id == AGENT_EQUIPMENT,
                Alarm.alarm_type == MISBEHAVING_TYPE,
                Alarm.state.in_(OPEN_STATES),
                Alarm.last_seen <= now - MISBEHAVING_QUIET,
            )
        ).all()
        for alarm in quiet:
            alarm.reason = f"{alarm.reason} (nothing refused for {MISBEHAVING_QUIET})"
            self._clear(session, alarm, at=now, change=AlarmChange.CLEARED, now=now)
        return len(quiet)

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
        alarm.edge_active = False
        alarm.last_transition_at = at
        self._changed(session, alarm, change, now, at=at, seq=seq)
        # Symptoms close with their cause.
        for symptom in session.scalars(_SYMPTOMS_OF, {"cause_id": alarm.id}):
            symptom.reason = f"closed with its cause {alarm.alarm_type}"
            self._clear(session, symptom, at=at, change=AlarmChange.CLEARED, now=now)

    def _changed(
        self,
        session: Session,
        alarm: Alarm,
        change: AlarmChange,
        now: datetime,
        *,
        at: datetime | None = None,
        seq: int | None = None,
        actor: str | None = None,
        note: str | None = None,
    ) -> None:
        # History is kept in event time, so flapping windows count what happened at the edge.
        session.add(
            AlarmHistory(
                alarm_id=alarm.id,
                at=at or now,
                change=change.value,
                severity=alarm.severity,
                value=alarm.value,
                seq=seq,
                actor=actor,
                note=note,
            )
        )
        for listener in self._listeners:
            listener.alarm_changed(session, alarm=alarm, change=change, now=now)

    @staticmethod
    def _open_alarm(
        session: Session, site_id: str, equipment_id: str, point: str, alarm_type: str
    ) -> Alarm | None:
        params = {
            "site_id": site_id,
            "equipment_id": equipment_id,
            "point": point,
            "alarm_type": alarm_type,
        }
        return session.scalars(_OPEN_ALARM, params).first()

    @staticmethod
    def _site_open_alarms(session: Session, site_id: str) -> list[Alarm]:
        return list(session.scalars(_SITE_OPEN, {"site_id": site_id}))
