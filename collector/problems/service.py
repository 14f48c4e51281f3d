"""Problems: the collector proposes one when a fault recurs; the NOC confirms or rejects it,
links incidents, records the root cause and the permanent fix, and closes it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from collector.alarms.listener import AlarmChange
from collector.alarms.models import Alarm, AlarmHistory
from collector.alarms.rules import load_rules
from collector.feed import service as feed
from collector.identity.access import Action, Principal, require
from collector.identity.scope import client_site_ids
from collector.problems.models import Problem, ProblemTicket
from collector.tickets.models import Ticket

SYSTEM = "collector"
OPEN = ("proposed", "confirmed")
# state -> states it may go to
ALLOWED = {"proposed": {"confirmed", "rejected"}, "confirmed": {"closed"}}


class ProblemNotFound(LookupError):
    """No such problem (or ticket to link) for this caller."""


class ProblemConflict(ValueError):
    """A change the problem's state does not allow; names both states."""


# Statements of the alarm path (every raise runs them), built once: building one costs more
# than running it.
_OPEN_PROBLEM = (
    select(Problem)
    .where(
        Problem.site_id == bindparam("site_id"),
        Problem.equipment_id == bindparam("equipment_id"),
        Problem.alarm_type == bindparam("alarm_type"),
        Problem.state.in_(OPEN),
    )
    .order_by(Problem.id)
)
_OCCURRENCES = (
    select(func.count())
    .select_from(AlarmHistory)
    .join(Alarm, Alarm.id == AlarmHistory.alarm_id)
    .where(
        Alarm.site_id == bindparam("site_id"),
        Alarm.equipment_id == bindparam("equipment_id"),
        Alarm.alarm_type == bindparam("alarm_type"),
        AlarmHistory.change.in_([AlarmChange.RAISED.value, AlarmChange.RERAISED.value]),
        AlarmHistory.at >= bindparam("since"),
    )
)
# The fault's tickets within the window that are not linked to the problem yet.
_UNLINKED_TICKETS = select(Ticket).where(
    Ticket.alarm_identity.like(bindparam("identity"), escape="\\"),
    Ticket.opened_at >= bindparam("since"),
    Ticket.id.not_in(
        select(ProblemTicket.ticket_id).where(ProblemTicket.problem_id == bindparam("problem_id"))
    ),
)


def consider(session: Session, *, alarm: Alarm, now: datetime) -> Problem | None:
    """After an occurrence of ``alarm``: link it to the open problem of its fault, or propose
    one when the fault has recurred often enough within the window."""
    rule = load_rules().problem
    since = now - timedelta(days=rule.window_days)
    fault = {
        "site_id": alarm.site_id,
        "equipment_id": alarm.equipment_id,
        "alarm_type": alarm.alarm_type,
    }
    problem = session.scalars(_OPEN_PROBLEM, fault).first()
    if problem is None:
        occurrences = session.scalar(_OCCURRENCES, {**fault, "since": since}) or 0
        if occurrences < rule.occurrences:
            return None
        problem = Problem(
            site_id=alarm.site_id,
            equipment_id=alarm.equipment_id,
            alarm_type=alarm.alarm_type,
            state="proposed",
            proposed_at=now,
            reason=f"{occurrences} occurrences of {alarm.alarm_type} on {alarm.equipment_id}"
            f" at {alarm.site_id} within {rule.window_days:g} days",
        )
        session.add(problem)
        session.flush()
        problem.ref = f"PRB-{now.year}-{problem.id:06d}"
        _publish(session, problem, action="proposed", now=now)
    # Any point of the fault; identifiers may hold "_", which LIKE would read as any character.
    identity = "/".join(
        (_literal(alarm.site_id), _literal(alarm.equipment_id), "%", _literal(alarm.alarm_type))
    )
    unlinked = session.scalars(
        _UNLINKED_TICKETS, {"identity": identity, "since": since, "problem_id": problem.id}
    )
    for ticket in unlinked.all():
        session.add(
            ProblemTicket(
                problem_id=problem.id, ticket_id=ticket.id, linked_at=now, linked_by=SYSTEM
            )
        )
    return problem


def _literal(text: str) -> str:
    """``text`` matched as itself by a LIKE pattern escaped with a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def create(
    session: Session,
    *,
    site_id: str,
    equipment_id: str,
    alarm_type: str,
    reason: str,
    ticket_refs: list[str],
    principal: Principal,
    now: datetime,
) -> Problem:
    """A problem the NOC records itself (already confirmed)."""
    _noc_only(principal)
    problem = Problem(
        site_id=site_id,
        equipment_id=equipment_id,
        alarm_type=alarm_type,
        state="confirmed",
        proposed_at=now,
        decided_at=now,
        decided_by=principal.user_id,
        reason=reason,
    )
    session.add(problem)
    session.flush()
    problem.ref = f"PRB-{now.year}-{problem.id:06d}"
    for ref in ticket_refs:
        _link(session, problem, _ticket(session, ref), actor=principal.user_id, now=now)
    _publish(session, problem, action="created", now=now)
    return problem


def decide(
    session: Session,
    *,
    ref: str,
    to: str,
    principal: Principal,
    now: datetime,
    reason: str = "",
    root_cause: str = "",
    permanent_fix: str = "",
) -> Problem:
    """Confirm or reject a proposed problem, or close a confirmed one."""
    _noc_only(principal)
    problem = get(session, ref=ref, principal=principal)
    if to not in ALLOWED.get(problem.state, set()):
        allowed = ", ".join(sorted(ALLOWED.get(problem.state, set()))) or "none (final state)"
        raise ProblemConflict(
            f"problem {ref}: cannot go from {problem.state} to {to}; allowed: {allowed}"
        )
    if to == "rejected" and not reason.strip():
        raise ProblemConflict(f"problem {ref}: say why it is rejected (reason)")
    if to == "closed" and not (root_cause.strip() and permanent_fix.strip()):
        raise ProblemConflict(f"problem {ref}: closing needs the root cause and the permanent fix")
    problem.state = to
    if to == "closed":
        problem.closed_at, problem.root_cause, problem.permanent_fix = (
            now,
            root_cause,
            permanent_fix,
        )
    else:
        problem.decided_at, problem.decided_by = now, principal.user_id
        if reason:
            problem.reason = reason
    _publish(session, problem, action=to, now=now)
    return problem


def link(
    session: Session, *, ref: str, ticket_ref: str, principal: Principal, now: datetime
) -> Problem:
    """Link an incident to an open problem."""
    _noc_only(principal)
    problem = get(session, ref=ref, principal=principal)
    if problem.state not in OPEN:
        raise ProblemConflict(f"problem {ref} is {problem.state}: tickets link to open problems")
    _link(session, problem, _ticket(session, ticket_ref), actor=principal.user_id, now=now)
    return problem


def get(session: Session, *, ref: str, principal: Principal) -> Problem:
    """One problem, if the caller may see it."""
    problem = session.scalars(select(Problem).where(Problem.ref == ref)).first()
    if problem is None or not _visible(session, problem, principal):
        raise ProblemNotFound(f"problem {ref} not found")
    return problem


def list_problems(
    session: Session, *, principal: Principal, state: str | None = None
) -> list[Problem]:
    """Problems the caller may see, newest first."""
    query = select(Problem).order_by(Problem.id.desc())
    if state is not None:
        query = query.where(Problem.state == state)
    if principal.is_client:
        query = query.where(Problem.site_id.in_(client_site_ids(principal.client_id or "")))
    return list(session.scalars(query))


def ticket_refs(session: Session, problem: Problem) -> list[str]:
    """References of the linked tickets, oldest first."""
    return list(
        session.scalars(
            select(Ticket.ref)
            .join(ProblemTicket, ProblemTicket.ticket_id == Ticket.id)
            .where(ProblemTicket.problem_id == problem.id)
            .order_by(Ticket.id)
        )
    )


def _link(session: Session, problem: Problem, ticket: Ticket, *, actor: str, now: datetime) -> None:
    exists = session.scalar(
        select(ProblemTicket.id).where(
            ProblemTicket.problem_id == problem.id, ProblemTicket.ticket_id == ticket.id
        )
    )
    if exists is None:
        session.add(
            ProblemTicket(
                problem_id=problem.id, ticket_id=ticket.id, linked_at=now, linked_by=actor
            )
        )
        session.flush()


def _ticket(session: Session, ref: str) -> Ticket:
    ticket = session.scalars(select(Ticket).where(Ticket.ref == ref)).first()
    if ticket is None:
        raise ProblemNotFound(f"ticket {ref} not found")
    return ticket


def _visible(session: Session, problem: Problem, principal: Principal) -> bool:
    if not principal.is_client:
        return True
    sites = set(session.scalars(client_site_ids(principal.client_id or "")))
    return problem.site_id in sites


def _noc_only(principal: Principal) -> None:
    require(principal, Action.PROBLEM_EDIT)


def _publish(session: Session, problem: Problem, *, action: str, now: datetime) -> None:
    feed.publish(
        session,
        kind="problem",
        site_id=problem.site_id,
        client_id=None,
        now=now,
        payload={"ref": problem.ref, "action": action, "state": problem.state},
    )
