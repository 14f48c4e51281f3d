"""Storm grouping: the same cause at many sites puts their tickets under one generic incident,
opened on first need; an incident left with no site of its own is cancelled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm, StormGroup
from collector.tickets.criticality import criticality_for_alarm
from collector.tickets.flows.identity import current_ticket
from collector.tickets.lifecycle import FINAL_STATES, TicketState
from collector.tickets.models import Ticket
from collector.tickets.opening import ALARM_CONTRACT, open_ticket
from collector.tickets.operations import SYSTEM_ACTOR, log_operation
from collector.tickets.transitions import cancel_untouched


def attach_to_storm(session: Session, *, alarm: Alarm, now: datetime) -> None:
    """Put the alarm's ticket under the storm's generic incident (opened on first need)."""
    if alarm.storm_id is None:
        return
    group = session.get(StormGroup, alarm.storm_id)
    if group is None:
        return
    parent = session.get(Ticket, group.ticket_id) if group.ticket_id else None
    if parent is not None and TicketState(parent.state) in FINAL_STATES:
        parent = None  # the storm goes on after its incident was cancelled: a new one
    if parent is None:
        parent = _open_incident(session, group=group, now=now)
    child = current_ticket(session, alarm=alarm)
    if child is not None and child.parent_ticket_id != parent.id and child.id != parent.id:
        before = session.get(Ticket, child.parent_ticket_id) if child.parent_ticket_id else None
        child.parent_ticket_id = parent.id
        log_operation(
            session,
            ticket=child,
            actor=SYSTEM_ACTOR,
            action="grouped",
            now=now,
            detail=f"part of generic incident {parent.ref}",
        )
        log_operation(
            session,
            ticket=parent,
            actor=SYSTEM_ACTOR,
            action="site_joined",
            now=now,
            detail=f"{alarm.site_id}: ticket {child.ref}",
            visible_to_client=False,
        )
        if before is not None and before.kind == "generic_incident":
            _retire_merged_incident(session, incident=before, into=parent, now=now)


def _open_incident(session: Session, *, group: StormGroup, now: datetime) -> Ticket:
    """The storm's generic incident, a parent to the site tickets (curative, 24/7)."""
    parent = Ticket(
        source="alarm",
        kind="generic_incident",
        site_id=None,
        title=f"Generic incident: {group.alarm_type} at several sites",
        description="opened by storm grouping: the same cause at many sites within the window",
        criticality=criticality_for_alarm(
            contract_id=ALARM_CONTRACT, alarm_type=group.alarm_type, severity="major"
        ),
        contract_id=ALARM_CONTRACT,
        opened_at=now,
        updated_at=now,
    )
    open_ticket(
        session, ticket=parent, actor=SYSTEM_ACTOR, detail=f"storm of {group.alarm_type}", now=now
    )
    group.ticket_id = parent.id
    return parent


def cancel_emptied_storm(session: Session, *, alarm: Alarm, now: datetime) -> None:
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
    cancel_untouched(session, ticket=parent, detail=detail, reason="symptom", now=now)


def _retire_merged_incident(
    session: Session, *, incident: Ticket, into: Ticket, now: datetime
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
            session, ticket=incident, actor=SYSTEM_ACTOR, action="merged", now=now, detail=detail
        )
        return
    incident.parent_ticket_id = into.id
    cancel_untouched(session, ticket=incident, detail=detail, reason="merged", now=now)


def _open_children(session: Session, parent: Ticket) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.parent_ticket_id == parent.id,
                Ticket.state.not_in(sorted(s.value for s in FINAL_STATES)),
            )
        )
        or 0
    )
