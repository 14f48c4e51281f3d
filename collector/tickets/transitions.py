"""Changing a ticket's state: ``move`` is the one place it happens.

``move`` checks the lifecycle, records the operation and moves the SLA clock; every change of
state goes through it, by hand (``transition``, ``restore``) or by the collector itself (a
recurrence, a symptom's cancellation, the auto-close). Who may ask for a move is checked by the
callers that know the caller (``transition``, ``restore``): the permission table has one row per
move.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from collector.identity.access import Action, Principal, require
from collector.sla.contracts import load_contracts
from collector.tickets.errors import RestorationNoticeRequired, VersionConflict
from collector.tickets.lifecycle import FINAL_STATES, TicketState, check_transition
from collector.tickets.models import Ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.permissions import transition_action
from collector.tickets.queries import get_ticket
from collector.tickets.resupervision import check_restorable
from collector.tickets.schemas import RestorationNotice
from collector.tickets.sla import CLOCK_FOR_STATE, record_clock


def move(
    session: Session,
    *,
    ticket: Ticket,
    to: TicketState,
    actor: str,
    now: datetime,
    detail: str = "",
    action: str | None = None,
    clock_reason: str | None = None,
    criticality: str | None = None,
    notify: bool = True,
) -> None:
    """Move ``ticket`` to ``to`` if the lifecycle allows it, log it and move its SLA clock.

    ``action`` names the operation (default: the new state), ``clock_reason`` the clock entry
    (default: the new state); ``criticality`` re-qualifies the ticket in the same move;
    ``notify=False`` moves it all the same but queues no notification.
    """
    current = TicketState(ticket.state)
    check_transition(ticket.ref or "", current, to)
    ticket.state = to.value
    if to in FINAL_STATES:
        ticket.closed_at = now
    elif to is TicketState.RESTORED:
        ticket.restored_at = now
    elif current is TicketState.RESTORED:
        ticket.restored_at = None  # refused, or recurred: no longer restored
    if criticality is not None and criticality != ticket.criticality:
        before = ticket.criticality
        ticket.criticality = criticality
        log_operation(
            session,
            ticket=ticket,
            actor=actor,
            action="criticality",
            now=now,
            before=before,
            after=criticality,
        )
    log_operation(
        session,
        ticket=ticket,
        actor=actor,
        action=action or to.value,
        now=now,
        detail=detail,
        before=current.value,
        after=to.value,
        notify=notify,
    )
    record_clock(
        session,
        ticket,
        state=CLOCK_FOR_STATE[to],
        at=now,
        reason=clock_reason or to.value,
        actor=actor,
    )


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
    """Move a ticket to ``to`` by hand if the lifecycle and the caller's role allow it."""
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
        raise RestorationNoticeRequired(ref)
    move(
        session,
        ticket=ticket,
        to=to,
        actor=principal.user_id,
        now=now,
        detail=detail,
        criticality=criticality,
    )
    return ticket


def restore(
    session: Session, *, ref: str, notice: RestorationNotice, principal: Principal, now: datetime
) -> Ticket:
    """Send the restoration notice; an alarm ticket needs every cause alarm cleared first."""
    require(principal, Action.TICKET_RESTORE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    check_transition(ref, TicketState(ticket.state), TicketState.RESTORED)
    check_restorable(session, ticket=ticket)
    document = notice.model_dump(mode="json")
    if document["return_to_nominal_at"] is None and ticket.return_to_nominal_at is not None:
        document["return_to_nominal_at"] = ticket.return_to_nominal_at.isoformat()
    ticket.restoration_notice = json.dumps(document)
    move(
        session,
        ticket=ticket,
        to=TicketState.RESTORED,
        actor=principal.user_id,
        now=now,
        detail=f"restoration notice: {notice.corrective_operation[:300]}",
    )
    return ticket


def cancel_untouched(
    session: Session, *, ticket: Ticket, detail: str, reason: str, now: datetime
) -> None:
    """The collector cancels a ticket nobody has taken up yet (still ``opened``), clock stopped."""
    move(
        session,
        ticket=ticket,
        to=TicketState.CANCELLED,
        actor=SYSTEM_ACTOR,
        now=now,
        detail=detail,
        clock_reason=reason,
    )
