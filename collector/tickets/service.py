"""Ticket operations (one aggregate): open, read, move through the lifecycle, timers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from collector.access import Principal, client_site_ids
from collector.alarms.models import Alarm, StormGroup
from collector.feed import service as feed
from collector.notifications import service as notifications
from collector.sla import ClockState
from collector.tickets.criticality import load_criticality_map
from collector.tickets.lifecycle import OPEN_STATES, TicketState, check_transition
from collector.tickets.models import Ticket, TicketAlarm, TicketOperation
from collector.tickets.sla import CLOCK_FOR_STATE, fire_due_escalations, record_clock, reschedule

AUTO_CLOSE_AFTER = timedelta(hours=48)
SYSTEM_ACTOR = "system"
MAX_ESCALATION = 3


def level_for_fraction(fraction: float) -> int:
    """Escalation level reached at a share of the GTR: 75 % -> level 2, 100 % -> level 3."""
    return 3 if fraction >= 1.0 else 2 if fraction >= 0.75 else 1


# What a client may do on its own tickets: answer a question, confirm or refuse a restoration.
CLIENT_MOVES = frozenset(
    {
        (TicketState.WAITING_CLIENT, TicketState.IN_PROGRESS),
        (TicketState.RESTORED, TicketState.CLOSED),
        (TicketState.RESTORED, TicketState.IN_PROGRESS),
    }
)


class NotAllowed(PermissionError):
    """The caller's role may not perform this action."""


class EscalationLimit(ValueError):
    """Already at the top escalation level."""


class TicketNotFound(LookupError):
    """No such ticket, or not one this caller may see."""


class VersionConflict(ValueError):
    """The ticket changed since the caller read it (ETag / If-Match)."""


@dataclass(frozen=True)
class TicketPage:
    """One page of tickets."""

    items: list[Ticket]
    total: int


def log_operation(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    action: str,
    now: datetime,
    detail: str = "",
    before: str | None = None,
    after: str | None = None,
    visible_to_client: bool = True,
) -> None:
    """Append to the ticket's operations log and bump its version."""
    session.add(
        TicketOperation(
            ticket_id=ticket.id,
            at=now,
            actor=actor,
            action=action,
            before=before,
            after=after,
            detail=detail,
            visible_to_client=visible_to_client,
        )
    )
    ticket.updated_at = now
    ticket.version += 1
    notifications.enqueue(
        session,
        ticket=ticket,
        event=action,
        detail=detail,
        visible_to_client=visible_to_client,
        now=now,
    )
    feed.publish(
        session,
        kind="ticket",
        site_id=ticket.site_id,
        client_id=ticket.client_id,
        now=now,
        payload={
            "ref": ticket.ref,
            "action": action,
            "state": ticket.state,
            "criticality": ticket.criticality,
            "escalation_level": ticket.escalation_level,
            "visible_to_client": visible_to_client,
        },
    )


def open_from_alarm(session: Session, *, alarm: Alarm, now: datetime) -> Ticket:
    """Open a curative-maintenance ticket for an alarm (clock 24/7), or record a recurrence."""
    current = _ticket_for_identity(session, alarm, open_only=True)
    if current is not None:
        _link(session, current, alarm)
        current.recurrences += 1
        detail = f"{alarm.alarm_type} raised again on {alarm.equipment_id}/{alarm.point}"
        if current.state == TicketState.RESTORED:
            check_transition(current.ref or "", TicketState.RESTORED, TicketState.IN_PROGRESS)
            current.state = TicketState.IN_PROGRESS.value
            current.restored_at = None
            current.return_to_nominal_at = None
            record_clock(
                session,
                current,
                state=ClockState.RUNNING,
                at=now,
                reason="recurrence",
                actor=SYSTEM_ACTOR,
            )
            log_operation(
                session,
                current,
                actor=SYSTEM_ACTOR,
                action="recurrence",
                now=now,
                detail=detail,
                before=TicketState.RESTORED.value,
                after=TicketState.IN_PROGRESS.value,
            )
        else:
            log_operation(
                session, current, actor=SYSTEM_ACTOR, action="recurrence", now=now, detail=detail
            )
        return current
    previous = _ticket_for_identity(session, alarm, open_only=False)
    criticality = load_criticality_map().for_alarm(
        alarm_type=alarm.alarm_type, severity=alarm.severity
    )
    ticket = Ticket(
        source="alarm",
        kind="curative",
        site_id=alarm.site_id,
        alarm_identity=alarm_identity(alarm),
        title=f"{alarm.alarm_type} at {alarm.site_id} ({alarm.equipment_id}/{alarm.point})",
        description=alarm.reason,
        state=TicketState.OPENED.value,
        criticality=criticality,
        opened_at=now,
        updated_at=now,
        previous_ticket_id=previous.id if previous is not None else None,
    )
    session.add(ticket)
    session.flush()
    ticket.ref = f"TKT-{now.year}-{ticket.id:06d}"
    _link(session, ticket, alarm)
    detail = f"opened from alarm {alarm.alarm_type} ({alarm.severity})"
    if previous is not None:
        detail += f"; follows closed ticket {previous.ref}"
    log_operation(
        session,
        ticket,
        actor=SYSTEM_ACTOR,
        action="opened",
        now=now,
        detail=detail,
        after=TicketState.OPENED.value,
    )
    record_clock(
        session, ticket, state=ClockState.RUNNING, at=now, reason="opened", actor=SYSTEM_ACTOR
    )
    return ticket


def on_cause_cleared(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Re-supervision: when the last cause alarm of a ticket clears, record return to nominal."""
    for ticket in session.scalars(
        select(Ticket)
        .join(TicketAlarm, TicketAlarm.ticket_id == Ticket.id)
        .where(TicketAlarm.alarm_id == alarm.id, Ticket.state.in_([s.value for s in OPEN_STATES]))
    ):
        still_open = session.scalar(
            select(func.count())
            .select_from(TicketAlarm)
            .join(Alarm, Alarm.id == TicketAlarm.alarm_id)
            .where(TicketAlarm.ticket_id == ticket.id, Alarm.state != "cleared")
        )
        if still_open == 0 and ticket.return_to_nominal_at is None:
            ticket.return_to_nominal_at = now
            log_operation(
                session,
                ticket,
                actor=SYSTEM_ACTOR,
                action="return_to_nominal",
                now=now,
                detail=f"cause alarm {alarm.alarm_type} cleared: back to nominal (re-supervision)",
            )


def list_tickets(
    session: Session,
    *,
    principal: Principal,
    state: str | None = None,
    site_id: str | None = None,
    open_only: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> TicketPage:
    """Tickets the caller may see, newest first."""
    query = select(Ticket)
    if principal.is_client:
        query = query.where(_client_scope(principal))
    if state is not None:
        query = query.where(Ticket.state == state)
    if open_only:
        query = query.where(Ticket.state.in_([s.value for s in OPEN_STATES]))
    if site_id is not None:
        query = query.where(Ticket.site_id == site_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Ticket.id.desc()).offset(offset).limit(limit)))
    return TicketPage(items=items, total=total)


def get_ticket(session: Session, *, ref: str, principal: Principal) -> Ticket:
    """One ticket by reference, if the caller may see it."""
    query = select(Ticket).where(Ticket.ref == ref)
    if principal.is_client:
        query = query.where(_client_scope(principal))
    ticket = session.scalars(query).first()
    if ticket is None:
        raise TicketNotFound(f"ticket {ref} not found")
    return ticket


def operations(session: Session, *, ticket: Ticket, principal: Principal) -> list[TicketOperation]:
    """The operations log (clients see the entries meant for them)."""
    query = select(TicketOperation).where(TicketOperation.ticket_id == ticket.id)
    if principal.is_client:
        query = query.where(TicketOperation.visible_to_client.is_(True))
    return list(session.scalars(query.order_by(TicketOperation.id)))


def transition(
    session: Session,
    *,
    ref: str,
    to: TicketState,
    principal: Principal,
    now: datetime,
    detail: str = "",
    criticality: str | None = None,
    expected_version: int | None = None,
) -> Ticket:
    """Move a ticket to ``to`` if the lifecycle allows it; every move is logged."""
    ticket = get_ticket(session, ref=ref, principal=principal)
    if expected_version is not None and expected_version != ticket.version:
        raise VersionConflict(
            f"ticket {ref} is at version {ticket.version}, not {expected_version}: reload it"
        )
    current = TicketState(ticket.state)
    check_transition(ref, current, to)
    if to is TicketState.RESTORED:
        raise NotAllowed(
            f"ticket {ref}: restoring needs the restoration notice:"
            f" POST /api/v1/tickets/{ref}/restore"
        )
    if principal.is_client and (current, to) not in CLIENT_MOVES:
        raise NotAllowed(
            f"ticket {ref}: a client may answer a question or confirm/refuse a restoration,"
            f" not move it from {current.value} to {to.value}"
        )
    ticket.state = to.value
    if to in (TicketState.CLOSED, TicketState.CANCELLED):
        ticket.closed_at = now
    elif current is TicketState.RESTORED:
        ticket.restored_at = None
    if criticality is not None and criticality != ticket.criticality:
        log_operation(
            session,
            ticket,
            actor=principal.user_id,
            action="criticality",
            now=now,
            before=ticket.criticality,
            after=criticality,
        )
        ticket.criticality = criticality
    log_operation(
        session,
        ticket,
        actor=principal.user_id,
        action=to.value,
        now=now,
        detail=detail,
        before=current.value,
        after=to.value,
    )
    record_clock(
        session, ticket, state=CLOCK_FOR_STATE[to], at=now, reason=to.value, actor=principal.user_id
    )
    return ticket


def escalate(
    session: Session, *, ref: str, principal: Principal, now: datetime, detail: str
) -> Ticket:
    """Escalate by hand one level (1 -> 2 -> 3)."""
    ticket = get_ticket(session, ref=ref, principal=principal)
    if ticket.escalation_level >= MAX_ESCALATION:
        raise EscalationLimit(f"ticket {ref} is already at escalation level {MAX_ESCALATION}")
    _raise_level(
        session,
        ticket,
        level=ticket.escalation_level + 1,
        actor=principal.user_id,
        now=now,
        detail=detail,
    )
    return ticket


def _raise_level(
    session: Session, ticket: Ticket, *, level: int, actor: str, now: datetime, detail: str
) -> None:
    before = ticket.escalation_level
    ticket.escalation_level = level
    log_operation(
        session,
        ticket,
        actor=actor,
        action="escalated",
        now=now,
        detail=detail,
        before=str(before),
        after=str(level),
    )


def run_sla_timers(session: Session, *, now: datetime) -> int:
    """Fire the escalation thresholds that are due (exact timers stored on each ticket)."""
    fired_total = 0
    for ticket in session.scalars(
        select(Ticket).where(
            Ticket.next_timer_at <= now, Ticket.state.in_([s.value for s in OPEN_STATES])
        )
    ):
        fired = fire_due_escalations(session, ticket, now=now)
        for fraction in fired:
            level = level_for_fraction(fraction)
            if fraction >= 1.0:
                ticket.sla_breached = True
            detail = f"SLA at {fraction:.0%} of the GTR"
            if level > ticket.escalation_level:
                _raise_level(
                    session, ticket, level=level, actor=SYSTEM_ACTOR, now=now, detail=detail
                )
            else:
                log_operation(
                    session,
                    ticket,
                    actor=SYSTEM_ACTOR,
                    action="sla_threshold",
                    now=now,
                    detail=detail,
                )
        fired_total += len(fired)
        reschedule(session, ticket, now=now)
    return fired_total


def run_due_timers(session: Session, *, now: datetime) -> int:
    """SLA thresholds, then auto-close of tickets restored 48 wall-clock hours ago; idempotent."""
    run_sla_timers(session, now=now)
    due = list(
        session.scalars(
            select(Ticket).where(
                Ticket.state == TicketState.RESTORED.value,
                Ticket.restored_at <= now - AUTO_CLOSE_AFTER,
            )
        )
    )
    for ticket in due:
        ticket.state = TicketState.CLOSED.value
        ticket.closed_at = now
        record_clock(
            session,
            ticket,
            state=ClockState.STOPPED,
            at=now,
            reason="auto-closed",
            actor=SYSTEM_ACTOR,
        )
        log_operation(
            session,
            ticket,
            actor=SYSTEM_ACTOR,
            action="auto_closed",
            now=now,
            detail="closed automatically 48 h after the restoration notice",
            before=TicketState.RESTORED.value,
            after=TicketState.CLOSED.value,
        )
    return len(due)


def _client_scope(principal: Principal):  # type: ignore[no-untyped-def]
    assert principal.client_id is not None
    return or_(
        Ticket.client_id == principal.client_id,
        Ticket.site_id.in_(client_site_ids(principal.client_id)),
    )


def _link(session: Session, ticket: Ticket, alarm: Alarm) -> None:
    if session.get(TicketAlarm, (ticket.id, alarm.id)) is None:
        session.add(TicketAlarm(ticket_id=ticket.id, alarm_id=alarm.id))


def alarm_identity(alarm: Alarm) -> str:
    """The identity key of an alarm: site, equipment, point, alarm type."""
    return "/".join((alarm.site_id, alarm.equipment_id, alarm.point, alarm.alarm_type))


def _ticket_for_identity(session: Session, alarm: Alarm, *, open_only: bool) -> Ticket | None:
    query = select(Ticket).where(Ticket.alarm_identity == alarm_identity(alarm))
    if open_only:
        query = query.where(Ticket.state.in_([s.value for s in OPEN_STATES]))
    else:
        query = query.where(Ticket.state == TicketState.CLOSED.value)
    return session.scalars(query.order_by(Ticket.id.desc())).first()


def absorb_symptom(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """A symptom of an open cause: its untouched ticket is cancelled into the cause's ticket.

    This is what makes suppression order-independent: whether the symptom or the cause came
    first, one ticket remains, the cause's.
    """
    ticket = _ticket_for_identity(session, alarm, open_only=True)
    if ticket is None:
        return
    cause = session.get(Alarm, alarm.suppressed_by) if alarm.suppressed_by else None
    cause_ticket = _ticket_for_identity(session, cause, open_only=True) if cause else None
    detail = f"symptom of {cause.alarm_type if cause else 'a cause alarm'} at {alarm.site_id}"
    if cause_ticket is not None:
        detail += f"; handled in ticket {cause_ticket.ref}"
        _link(session, cause_ticket, alarm)
    if ticket.state == TicketState.OPENED.value and ticket is not cause_ticket:
        ticket.state = TicketState.CANCELLED.value
        ticket.closed_at = now
        log_operation(
            session,
            ticket,
            actor=SYSTEM_ACTOR,
            action="cancelled",
            now=now,
            detail=detail,
            before=TicketState.OPENED.value,
            after=TicketState.CANCELLED.value,
        )
        record_clock(
            session, ticket, state=ClockState.STOPPED, at=now, reason="symptom", actor=SYSTEM_ACTOR
        )
    else:
        log_operation(session, ticket, actor=SYSTEM_ACTOR, action="symptom", now=now, detail=detail)


def attach_to_storm(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Put the alarm's ticket under the storm's generic incident (opened on first need)."""
    if alarm.storm_id is None:
        return
    group = session.get(StormGroup, alarm.storm_id)
    if group is None:
        return
    parent = session.get(Ticket, group.ticket_id) if group.ticket_id else None
    if parent is None:
        parent = Ticket(
            source="alarm",
            kind="generic_incident",
            site_id=None,
            title=f"Generic incident: {group.alarm_type} at several sites",
            description="opened by storm grouping: the same cause at many sites within the window",
            state=TicketState.OPENED.value,
            criticality=load_criticality_map().for_alarm(
                alarm_type=group.alarm_type, severity="major"
            ),
            opened_at=now,
            updated_at=now,
        )
        session.add(parent)
        session.flush()
        parent.ref = f"TKT-{now.year}-{parent.id:06d}"
        group.ticket_id = parent.id
        log_operation(
            session,
            parent,
            actor=SYSTEM_ACTOR,
            action="opened",
            now=now,
            detail=f"storm of {group.alarm_type}",
            after=TicketState.OPENED.value,
        )
        record_clock(
            session, parent, state=ClockState.RUNNING, at=now, reason="opened", actor=SYSTEM_ACTOR
        )
    child = _ticket_for_identity(session, alarm, open_only=True)
    if child is not None and child.parent_ticket_id != parent.id and child.id != parent.id:
        child.parent_ticket_id = parent.id
        log_operation(
            session,
            child,
            actor=SYSTEM_ACTOR,
            action="grouped",
            now=now,
            detail=f"part of generic incident {parent.ref}",
        )
        log_operation(
            session,
            parent,
            actor=SYSTEM_ACTOR,
            action="site_joined",
            now=now,
            detail=f"{alarm.site_id}: ticket {child.ref}",
            visible_to_client=False,
        )


def note_flapping(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Say on the ticket that its alarm flaps and stays quiet until stable."""
    ticket = _ticket_for_identity(session, alarm, open_only=True)
    if ticket is not None:
        log_operation(
            session,
            ticket,
            actor=SYSTEM_ACTOR,
            action="flapping",
            now=now,
            detail=f"{alarm.alarm_type} is flapping: quiet until stable",
        )
