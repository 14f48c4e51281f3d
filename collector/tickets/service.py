"""Ticket operations (one aggregate): open, read, move through the lifecycle, timers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from collector.access import Action, Principal, client_site_ids, require, transition_action
from collector.alarms.models import Alarm, StormGroup
from collector.feed import service as feed
from collector.notifications import service as notifications
from collector.sla import ClockState
from collector.sla.contracts import load_contracts
from collector.tickets.criticality import criticality_for_alarm, load_criticality_map, more_severe
from collector.tickets.lifecycle import OPEN_STATES, TicketState, check_transition
from collector.tickets.models import Ticket, TicketAlarm, TicketOperation
from collector.tickets.sla import CLOCK_FOR_STATE, fire_due_escalations, record_clock, reschedule

AUTO_CLOSE_AFTER = timedelta(hours=48)
# Tickets opened from alarms are curative maintenance, counted 24/7.
ALARM_CONTRACT = "curative-24x7"
SYSTEM_ACTOR = "system"
MAX_ESCALATION = 3


def level_for_fraction(fraction: float) -> int:
    """Escalation level reached at a share of the GTR: 75 % -> level 2, 100 % -> level 3."""
    return 3 if fraction >= 1.0 else 2 if fraction >= 0.75 else 1


class NotAllowed(PermissionError):
    """Not something this caller may do here: not its dispatch, or not through this route."""


class EscalationLimit(ValueError):
    """Already at the top escalation level."""


class TicketNotFound(LookupError):
    """No such ticket, or not one this caller may see."""


class VersionConflict(ValueError):
    """The ticket changed since the caller read it (ETag / If-Match)."""


class InvalidTicketRequest(ValueError):
    """A request naming something that does not exist (an unknown contract, ...)."""


class TicketConflict(ValueError):
    """The ticket is not in a state that allows the action (cause alarms active, ...)."""


@dataclass(frozen=True)
class TicketPage:
    """One page of tickets."""

    items: list[Ticket]
    total: int


def add_ticket(session: Session, ticket: Ticket, *, now: datetime) -> Ticket:
    """Store a new ticket and give it its reference (``TKT-<year>-<id>``)."""
    session.add(ticket)
    session.flush()
    ticket.ref = f"TKT-{now.year}-{ticket.id:06d}"
    return ticket


def record_opened(
    session: Session, ticket: Ticket, *, actor: str, detail: str, now: datetime
) -> None:
    """A new ticket's "opened" operation (notifying whom it concerns) and its SLA clock, running."""
    log_operation(
        session,
        ticket,
        actor=actor,
        action="opened",
        now=now,
        detail=detail,
        after=TicketState.OPENED.value,
    )
    record_clock(
        session,
        ticket,
        state=ClockState.RUNNING,
        at=now,
        reason="opened",
        actor=actor,
        new_ticket=True,
    )


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
    latest = _latest_for_identity(session, alarm)
    current = latest if latest is not None and latest.state != TicketState.CLOSED else None
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
    previous = latest  # closed, or None
    criticality = criticality_for_alarm(
        contract_id=ALARM_CONTRACT, alarm_type=alarm.alarm_type, severity=alarm.severity
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
        contract_id=ALARM_CONTRACT,
        opened_at=now,
        updated_at=now,
        previous_ticket_id=previous.id if previous is not None else None,
    )
    add_ticket(session, ticket, now=now)
    session.add(TicketAlarm(ticket_id=ticket.id, alarm_id=alarm.id))
    detail = f"opened from alarm {alarm.alarm_type} ({alarm.severity})"
    if previous is not None:
        detail += f"; follows closed ticket {previous.ref}"
    record_opened(session, ticket, actor=SYSTEM_ACTOR, detail=detail, now=now)
    return ticket


# Statements the alarm path runs for every event, built once (building costs more than running).
_ACTIVE_CAUSE_ALARMS = (
    select(func.count())
    .select_from(TicketAlarm)
    .join(Alarm, Alarm.id == TicketAlarm.alarm_id)
    .where(TicketAlarm.ticket_id == bindparam("ticket_id"), Alarm.state != "cleared")
)


def _active_cause_alarms(session: Session, ticket: Ticket) -> int:
    return session.scalar(_ACTIVE_CAUSE_ALARMS, {"ticket_id": ticket.id}) or 0


def _cause_alarm_types(session: Session, ticket: Ticket) -> set[str]:
    return set(
        session.scalars(
            select(Alarm.alarm_type)
            .join(TicketAlarm, TicketAlarm.alarm_id == Alarm.id)
            .where(TicketAlarm.ticket_id == ticket.id)
        )
    )


def resupervision_mode(ticket: Ticket) -> str:
    """``manual`` when the contract or one of the cause alarm types says so, else ``automatic``."""
    if load_contracts().get(ticket.contract_id).resupervision == "manual":
        return "manual"
    # The type of the alarm that opened the ticket is the last part of its identity (no query:
    # ticket lists ask this for every row). Fire, the shipped manual type, is never a symptom.
    opening_type = (ticket.alarm_identity or "").rsplit("/", 1)[-1]
    manual_types = load_criticality_map().manual_resupervision
    return "manual" if opening_type in manual_types else "automatic"


def on_cause_cleared(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Re-supervision: when the last cause alarm of a ticket clears, record return to nominal
    (automatic), or tell the NOC it has to confirm it (manual)."""
    for ticket in session.scalars(
        select(Ticket)
        .join(TicketAlarm, TicketAlarm.ticket_id == Ticket.id)
        .where(TicketAlarm.alarm_id == alarm.id, Ticket.state.in_([s.value for s in OPEN_STATES]))
    ):
        if _active_cause_alarms(session, ticket) or ticket.return_to_nominal_at is not None:
            continue
        if resupervision_mode(ticket) == "manual":
            log_operation(
                session,
                ticket,
                actor=SYSTEM_ACTOR,
                action="awaiting_resupervision",
                now=now,
                detail=f"cause alarm {alarm.alarm_type} cleared: the NOC confirms the return"
                " to nominal (manual re-supervision)",
            )
            continue
        ticket.return_to_nominal_at = now
        log_operation(
            session,
            ticket,
            actor=SYSTEM_ACTOR,
            action="return_to_nominal",
            now=now,
            detail=f"cause alarm {alarm.alarm_type} cleared: back to nominal (re-supervision)",
        )


def confirm_resupervision(
    session: Session,
    *,
    ref: str,
    principal: Principal,
    now: datetime,
    at: datetime | None = None,
    detail: str = "",
) -> Ticket:
    """Manual re-supervision: the NOC confirms the return to nominal (at ``at``, default now)."""
    require(principal, Action.TICKET_RESUPERVISE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if TicketState(ticket.state) not in OPEN_STATES:
        raise TicketConflict(f"ticket {ref} is {ticket.state}: nothing to re-supervise")
    if ticket.return_to_nominal_at is not None:
        raise TicketConflict(
            f"ticket {ref} is already back to nominal since"
            f" {ticket.return_to_nominal_at.isoformat(timespec='minutes')}"
        )
    active = _active_cause_alarms(session, ticket)
    if active:
        raise TicketConflict(
            f"ticket {ref}: {active} cause alarm(s) still active; the site is not back to nominal"
        )
    when = at or now
    if when > now:
        raise TicketConflict(f"ticket {ref}: the return to nominal cannot be in the future")
    ticket.return_to_nominal_at = when
    log_operation(
        session,
        ticket,
        actor=principal.user_id,
        action="return_to_nominal",
        now=now,
        detail=(f"confirmed by the NOC (manual re-supervision) {detail}").strip(),
    )
    return ticket


def check_restorable(session: Session, ticket: Ticket) -> None:
    """Raise ``TicketConflict`` while a cause alarm is active or a manual re-supervision is due."""
    ref = ticket.ref or ""
    active = _active_cause_alarms(session, ticket)
    if active:
        raise TicketConflict(
            f"ticket {ref}: {active} cause alarm(s) still active; restore once cleared"
        )
    has_alarms = bool(_cause_alarm_types(session, ticket))
    if (
        has_alarms
        and ticket.return_to_nominal_at is None
        and resupervision_mode(ticket) == "manual"
    ):
        raise TicketConflict(
            f"ticket {ref}: manual re-supervision: the NOC confirms the return to nominal first"
            f" (POST /api/v1/tickets/{ref}/resupervision)"
        )


def change_contract(
    session: Session, *, ref: str, contract_id: str, principal: Principal, now: datetime
) -> Ticket:
    """Put a ticket under another contract; its criticality keeps its meaning on the new
    profile, and the clock log is untouched, so frozen time survives the change."""
    require(principal, Action.TICKET_CONTRACT)
    book = load_contracts()
    try:
        book.get(contract_id)
    except KeyError as err:
        raise InvalidTicketRequest(err.args[0]) from err
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if TicketState(ticket.state) not in OPEN_STATES:
        raise TicketConflict(f"ticket {ref} is {ticket.state}: its contract can no longer change")
    before = ticket.contract_id
    if before == contract_id:
        return ticket
    level = book.convert_level(ticket.criticality, from_contract=before, to_contract=contract_id)
    detail = f"contract {before} -> {contract_id}"
    if level != ticket.criticality:
        detail += f"; criticality {ticket.criticality} -> {level}"
    ticket.contract_id = contract_id
    ticket.criticality = level
    log_operation(
        session,
        ticket,
        actor=principal.user_id,
        action="contract",
        now=now,
        detail=detail,
        before=before,
        after=contract_id,
        visible_to_client=True,
    )
    reschedule(session, ticket, now=now)
    return ticket


def exclude_from_penalties(
    session: Session, *, site_id: str, client_id: str | None, reason: str, now: datetime
) -> list[Ticket]:
    """The client refused an urgent intervention: open tickets at the site (the client's, when
    the works concern one client) are not penalised for lateness from now on."""
    query = select(Ticket).where(
        Ticket.site_id == site_id,
        Ticket.state.in_([s.value for s in OPEN_STATES]),
        Ticket.penalty_excluded_from.is_(None),
    )
    if client_id is not None:
        query = query.where(or_(Ticket.client_id == client_id, Ticket.client_id.is_(None)))
    tickets = list(session.scalars(query))
    for ticket in tickets:
        ticket.penalty_excluded_from = now
        ticket.penalty_excluded_reason = reason
        log_operation(
            session,
            ticket,
            actor=SYSTEM_ACTOR,
            action="penalty_excluded",
            now=now,
            detail=f"{reason}: lateness from now on is excluded from penalties",
        )
    return tickets


def list_tickets(
    session: Session,
    *,
    principal: Principal,
    state: str | None = None,
    site_id: str | None = None,
    criticality: str | None = None,
    client_id: str | None = None,
    open_only: bool = False,
    sort: str = "newest",
    offset: int = 0,
    limit: int = 50,
) -> TicketPage:
    """Tickets the caller may see; ``sort``: newest, oldest, updated (most recently changed
    first) or escalation (highest level first)."""
    query = select(Ticket)
    if principal.is_client:
        query = query.where(ticket_scope(principal))
    if state is not None:
        query = query.where(Ticket.state == state)
    if open_only:
        query = query.where(Ticket.state.in_([s.value for s in OPEN_STATES]))
    if site_id is not None:
        query = query.where(Ticket.site_id == site_id)
    if criticality is not None:
        query = query.where(Ticket.criticality == criticality)
    if client_id is not None:
        query = query.where(Ticket.client_id == client_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = {
        "newest": (Ticket.id.desc(),),
        "oldest": (Ticket.id.asc(),),
        "updated": (Ticket.updated_at.desc(), Ticket.id.desc()),
        "escalation": (Ticket.escalation_level.desc(), Ticket.id.desc()),
    }[sort]
    items = list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))
    return TicketPage(items=items, total=total)


def get_ticket(
    session: Session, *, ref: str, principal: Principal, for_update: bool = False
) -> Ticket:
    """One ticket by reference, if the caller may see it; ``for_update`` locks its row until
    the transaction ends (every change: another instance, or ingest, may be changing it)."""
    query = select(Ticket).where(Ticket.ref == ref)
    if principal.is_client:
        query = query.where(ticket_scope(principal))
    if for_update:
        query = query.with_for_update(of=Ticket).execution_options(populate_existing=True)
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
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if expected_version is not None and expected_version != ticket.version:
        raise VersionConflict(
            f"ticket {ref} is at version {ticket.version}, not {expected_version}: reload it"
        )
    current = TicketState(ticket.state)
    check_transition(ref, current, to)
    # Each move is its own row of the permission table (a client answers a question, confirms
    # or refuses a restoration; it cancels or qualifies nothing).
    require(principal, transition_action(current, to))
    if criticality is not None:
        load_contracts().check_level(ticket.contract_id, criticality)
    if to is TicketState.RESTORED:
        raise NotAllowed(
            f"ticket {ref}: restoring needs the restoration notice:"
            f" POST /api/v1/tickets/{ref}/restore"
        )
    ticket.state = to.value
    if to in (TicketState.CLOSED, TicketState.CANCELLED):
        ticket.closed_at = now
    elif current is TicketState.RESTORED:
        ticket.restored_at = None
    if criticality is not None and criticality != ticket.criticality:
        before = ticket.criticality
        ticket.criticality = criticality
        log_operation(
            session,
            ticket,
            actor=principal.user_id,
            action="criticality",
            now=now,
            before=before,
            after=criticality,
        )
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
    require(principal, Action.TICKET_ESCALATE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
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
        select(Ticket)
        .where(Ticket.next_timer_at <= now, Ticket.state.in_([s.value for s in OPEN_STATES]))
        # A ticket being changed elsewhere (ingest, an operator) is taken at the next tick,
        # with its timers recomputed from what that change left.
        .with_for_update(skip_locked=True)
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
            select(Ticket)
            .where(
                Ticket.state == TicketState.RESTORED.value,
                Ticket.restored_at <= now - AUTO_CLOSE_AFTER,
            )
            # One a client is confirming or refusing right now is skipped, and seen next tick.
            .with_for_update(skip_locked=True)
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


def ticket_scope(principal: Principal):  # type: ignore[no-untyped-def]
    """The tickets a client may see: its own, and those at sites where it has a service."""
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


_OF_IDENTITY = select(Ticket).where(Ticket.alarm_identity == bindparam("identity"))
_LATEST_FOR_IDENTITY = (
    _OF_IDENTITY.where(
        Ticket.state.in_([s.value for s in OPEN_STATES] + [TicketState.CLOSED.value])
    )
    .order_by(Ticket.id.desc())
    .limit(1)
)
_OPEN_FOR_IDENTITY = _OF_IDENTITY.where(Ticket.state.in_([s.value for s in OPEN_STATES])).order_by(
    Ticket.id.desc()
)
_CLOSED_FOR_IDENTITY = _OF_IDENTITY.where(Ticket.state == TicketState.CLOSED.value).order_by(
    Ticket.id.desc()
)


def _latest_for_identity(session: Session, alarm: Alarm) -> Ticket | None:
    """The open ticket of this alarm identity, or else its last closed one (cancelled ones are
    not followed up). At most one is open, and it is always the newest."""
    return session.scalars(_LATEST_FOR_IDENTITY, {"identity": alarm_identity(alarm)}).first()


def _ticket_for_identity(session: Session, alarm: Alarm, *, open_only: bool) -> Ticket | None:
    query = _OPEN_FOR_IDENTITY if open_only else _CLOSED_FOR_IDENTITY
    return session.scalars(query, {"identity": alarm_identity(alarm)}).first()


def absorb_symptom(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """A symptom of an open cause: its untouched ticket is cancelled into the cause's ticket.

    This is what makes suppression order-independent: whether the symptom or the cause came
    first, one ticket remains, the cause's.
    """
    cause = session.get(Alarm, alarm.suppressed_by) if alarm.suppressed_by else None
    cause_ticket = _ticket_for_identity(session, cause, open_only=True) if cause else None
    detail = f"symptom of {cause.alarm_type if cause else 'a cause alarm'} at {alarm.site_id}"
    if cause_ticket is not None:
        detail += f"; handled in ticket {cause_ticket.ref}"
        _link(session, cause_ticket, alarm)
        _raise_criticality(session, cause_ticket, alarm=alarm, now=now)
    ticket = _ticket_for_identity(session, alarm, open_only=True)
    if ticket is None:
        _cancel_emptied_storm(session, alarm=alarm, now=now)
        return
    if ticket.state == TicketState.OPENED.value and ticket is not cause_ticket:
        _cancel_untouched(session, ticket, detail=detail, reason="symptom", now=now)
    else:
        log_operation(session, ticket, actor=SYSTEM_ACTOR, action="symptom", now=now, detail=detail)
    _cancel_emptied_storm(session, alarm=alarm, now=now)


def _cancel_emptied_storm(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """A generic incident whose every site turned out to be a symptom of a cause is cancelled:
    symptoms arriving before their causes (a regional cut reports in any order) must not leave
    the NOC a second generic incident beside the cause's."""
    group = session.get(StormGroup, alarm.storm_id) if alarm.storm_id else None
    parent = session.get(Ticket, group.ticket_id) if group and group.ticket_id else None
    if parent is None or parent.state != TicketState.OPENED.value:
        return
    if _open_children(session, parent):
        return
    detail = (
        f"every site's {group.alarm_type if group else 'alarm'} is a symptom of a cause"
        " handled in its own ticket"
    )
    _cancel_untouched(session, parent, detail=detail, reason="symptom", now=now)


def _cancel_untouched(
    session: Session, ticket: Ticket, *, detail: str, reason: str, now: datetime
) -> None:
    """The system cancels a ticket nobody has taken up yet (still ``opened``), clock stopped."""
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
        session, ticket, state=ClockState.STOPPED, at=now, reason=reason, actor=SYSTEM_ACTOR
    )


def _open_children(session: Session, parent: Ticket) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.parent_ticket_id == parent.id,
                Ticket.state.not_in([TicketState.CANCELLED.value, TicketState.CLOSED.value]),
            )
        )
        or 0
    )


def _raise_criticality(session: Session, ticket: Ticket, *, alarm: Alarm, now: datetime) -> None:
    """A symptom more severe than its cause's ticket raises it (mains lost, then battery low)."""
    level = criticality_for_alarm(
        contract_id=ticket.contract_id, alarm_type=alarm.alarm_type, severity=alarm.severity
    )
    if not more_severe(level, ticket.criticality, contract_id=ticket.contract_id):
        return
    before = ticket.criticality
    ticket.criticality = level
    log_operation(
        session,
        ticket,
        actor=SYSTEM_ACTOR,
        action="criticality",
        now=now,
        detail=f"{alarm.alarm_type} at {alarm.site_id} raises the criticality",
        before=before,
        after=level,
    )
    reschedule(session, ticket, now=now)


def attach_to_storm(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Put the alarm's ticket under the storm's generic incident (opened on first need)."""
    if alarm.storm_id is None:
        return
    group = session.get(StormGroup, alarm.storm_id)
    if group is None:
        return
    parent = session.get(Ticket, group.ticket_id) if group.ticket_id else None
    if parent is not None and parent.state in (
        TicketState.CANCELLED.value,
        TicketState.CLOSED.value,
    ):
        parent = None  # the storm goes on after its incident was cancelled: a new one
    if parent is None:
        parent = Ticket(
            source="alarm",
            kind="generic_incident",
            site_id=None,
            title=f"Generic incident: {group.alarm_type} at several sites",
            description="opened by storm grouping: the same cause at many sites within the window",
            state=TicketState.OPENED.value,
            criticality=criticality_for_alarm(
                contract_id=ALARM_CONTRACT, alarm_type=group.alarm_type, severity="major"
            ),
            contract_id=ALARM_CONTRACT,
            opened_at=now,
            updated_at=now,
        )
        add_ticket(session, parent, now=now)
        group.ticket_id = parent.id
        record_opened(
            session, parent, actor=SYSTEM_ACTOR, detail=f"storm of {group.alarm_type}", now=now
        )
    child = _ticket_for_identity(session, alarm, open_only=True)
    if child is not None and child.parent_ticket_id != parent.id and child.id != parent.id:
        before = session.get(Ticket, child.parent_ticket_id) if child.parent_ticket_id else None
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
        if before is not None and before.kind == "generic_incident":
            _retire_merged_incident(session, before, into=parent, now=now)


def _retire_merged_incident(
    session: Session, incident: Ticket, *, into: Ticket, now: datetime
) -> None:
    """Two storm groups turned out to be one storm (a raise between them was applied late): the
    later incident, once its last site has moved to the earlier one, is cancelled into it. It
    stays, pointing at the incident that goes on (its parent), for the audit trail; one the NOC
    has already taken up is only told where its sites went."""
    if _open_children(session, incident):
        return
    detail = f"the same storm as generic incident {into.ref}: its sites are handled there"
    if incident.state != TicketState.OPENED.value:
        log_operation(
            session, incident, actor=SYSTEM_ACTOR, action="merged", now=now, detail=detail
        )
        return
    incident.parent_ticket_id = into.id
    _cancel_untouched(session, incident, detail=detail, reason="merged", now=now)


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
