"""Storm grouping: the same cause at many sites within a window is one generic incident.

The definition is on event time, so that it does not depend on the order in which streams are
applied (several instances apply different agents at once, and a killed one's share arrives
late). A raise at ``r`` is an *anchor* when at least ``min_sites`` distinct sites raised the
type within ``[r - window, r]``; every raise inside an anchor's window is a member; anchors
less than a window apart share one group. Whether a member has cleared since does not matter:
a site that cut and came back within the storm was still part of it.

Applied out of event order, two groups can form before the raise between them arrives; once
an anchor is less than a window from both, they are one storm: the later group is merged into
the earliest (its members move over, its row goes). The members that moved are returned with
the joiners, so the tickets follow them (``collector.tickets.flows.storms.attach_to_storm``).

Raises mostly arrive in event order and then cost two or three indexed queries: the newcomer
falls inside a group's span, or it is itself an anchor (or neither). A raise applied after later
ones (a late stream) also re-examines the later raises still ungrouped, which are few: those
inside a group's windows are already members.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm, StormGroup
from collector.alarms.rules import StormRule
from collector.storage.locks import lock


def group_storm(session: Session, alarm: Alarm, *, rule: StormRule, at: datetime) -> list[Alarm]:
    """Group ``alarm`` (a new raise at event time ``at``) and whatever it makes a storm of;
    returns the alarms that joined a group now."""
    # One storm type at a time across instances: two of them each counting half the sites
    # would otherwise open no incident, or two.
    lock(session, f"storm:{alarm.alarm_type}")
    window = timedelta(seconds=rule.window_s)
    alarm_type = alarm.alarm_type
    covering = session.scalars(
        select(StormGroup)
        .where(
            StormGroup.alarm_type == alarm_type,
            StormGroup.opened_at <= at + window,
            StormGroup.last_at >= at,
        )
        .order_by(StormGroup.id)
    ).first()
    if covering is None:
        joined = _if_anchor(session, alarm_type, at=at, window=window, rule=rule)
    else:
        joined = _join(covering, [alarm])
        if at < covering.opened_at:
            # Before the group's first anchor: an anchor itself, it stretches the group back.
            joined += _if_anchor(
                session, alarm_type, at=at, window=window, rule=rule, group=covering
            )
    # Applied after later raises (a late stream), this one may complete the window of one of
    # them and make it an anchor. Only raises that are not yet known to be anchors can change
    # anything: the ungrouped ones, and members earlier than their group's first anchor (a
    # group's windows cover its span already). In event order there are none.
    for later in _not_anchors_after(session, alarm_type, at=at, window=window):
        group = session.get(StormGroup, later.storm_id) if later.storm_id else None
        if group is None or group.opened_at > later.raised_at:
            joined += _if_anchor(
                session, alarm_type, at=later.raised_at, window=window, rule=rule, group=group
            )
    return list({member.id: member for member in joined}.values())


def _not_anchors_after(
    session: Session, alarm_type: str, *, at: datetime, window: timedelta
) -> list[Alarm]:
    query = (
        select(Alarm)
        .outerjoin(StormGroup, StormGroup.id == Alarm.storm_id)
        .where(
            *_raised(alarm_type, at + _TICK, at + window),
            or_(Alarm.storm_id.is_(None), StormGroup.opened_at > Alarm.raised_at),
        )
        .order_by(Alarm.raised_at, Alarm.id)
    )
    return list(session.scalars(query))


# Raise times are stored to the microsecond: "after at" starts one tick later.
_TICK = timedelta(microseconds=1)


def _if_anchor(
    session: Session,
    alarm_type: str,
    *,
    at: datetime,
    window: timedelta,
    rule: StormRule,
    group: StormGroup | None = None,
) -> list[Alarm]:
    """If the raise at ``at`` is an anchor, group every raise of its window (in ``group``, the
    one it is a member of already, if any)."""
    if _sites(session, alarm_type, at - window, at) < rule.min_sites:
        return []
    group, moved = _group_near(session, alarm_type, at=at, window=window, member_of=group)
    group.opened_at = min(group.opened_at, at)
    group.last_at = max(group.last_at, at)
    return moved + _join(group, _ungrouped(session, alarm_type, at - window, at))


def _raised(alarm_type: str, since: datetime, until: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Alarm.alarm_type == alarm_type,
        Alarm.raised_at >= since,
        Alarm.raised_at <= until,
        # A symptom of a cause at its own site is not an outage of its own.
        Alarm.suppressed_by.is_(None),
    )


def _sites(session: Session, alarm_type: str, since: datetime, until: datetime) -> int:
    # Counted in SQL: loading every member for every newcomer is quadratic in a storm.
    counted = select(func.count(func.distinct(Alarm.site_id))).where(
        *_raised(alarm_type, since, until)
    )
    return session.scalar(counted) or 0


def _ungrouped(session: Session, alarm_type: str, since: datetime, until: datetime) -> list[Alarm]:
    return list(
        session.scalars(
            select(Alarm).where(*_raised(alarm_type, since, until), Alarm.storm_id.is_(None))
        )
    )


def _group_near(
    session: Session,
    alarm_type: str,
    *,
    at: datetime,
    window: timedelta,
    member_of: StormGroup | None,
) -> tuple[StormGroup, list[Alarm]]:
    """The group of an anchor at ``at``, and the alarms that moved to it.

    Every group with an anchor less than a window away chains with this one: all of them (and
    ``member_of``, the group the anchor belongs to already) are one storm, kept in the earliest
    group. Without any, a new group."""
    near = list(
        session.scalars(
            select(StormGroup)
            .where(
                StormGroup.alarm_type == alarm_type,
                StormGroup.last_at >= at - window,
                StormGroup.opened_at <= at + window,
            )
            .order_by(StormGroup.id)
        )
    )
    if member_of is not None and member_of not in near:
        near.append(member_of)
    if not near:
        group = StormGroup(alarm_type=alarm_type, opened_at=at, last_at=at)
        session.add(group)
        session.flush()
        return group, []
    near.sort(key=lambda g: g.id)
    group, merged = near[0], near[1:]
    return group, _merge(session, group, merged)


def _merge(session: Session, into: StormGroup, groups: list[StormGroup]) -> list[Alarm]:
    """Merge ``groups`` into ``into``: their members move, their rows go. The generic
    incident of ``into`` stays the storm's (or, without one, the earliest of theirs): only the
    members that moved are re-announced, so only their tickets may have to change parent; the
    tickets listener moves them under it and retires the incidents left empty."""
    if not groups:
        return []
    ids = [g.id for g in groups]
    moved = list(session.scalars(select(Alarm).where(Alarm.storm_id.in_(ids))))
    for member in moved:
        member.storm_id = into.id
    if into.ticket_id is None:
        tickets = [g.ticket_id for g in groups if g.ticket_id is not None]
        into.ticket_id = min(tickets) if tickets else None
    into.opened_at = min(g.opened_at for g in (into, *groups))
    into.last_at = max(g.last_at for g in (into, *groups))
    # Members first: nothing may point at a group row when it goes.
    session.flush()
    for gone in groups:
        session.delete(gone)
    return moved


def _join(group: StormGroup, alarms: list[Alarm]) -> list[Alarm]:
    joined = [a for a in alarms if a.storm_id is None]
    for member in joined:
        member.storm_id = group.id
    return joined
