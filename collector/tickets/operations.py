"""A ticket's operations log: who did what, when — every action is an entry.

Appending an entry also bumps the ticket's version (its ETag), queues the notifications it
calls for and publishes it to the live feed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.feed import service as feed
from collector.identity.access import Principal
from collector.notifications import service as notifications
from collector.tickets.models import Ticket, TicketOperation

# The actor of what the collector does by itself (alarm flows, timers).
SYSTEM_ACTOR = "system"


def log_operation(
    session: Session,
    *,
    ticket: Ticket,
    actor: str,
    action: str,
    now: datetime,
    detail: str = "",
    before: str | None = None,
    after: str | None = None,
    visible_to_client: bool = True,
    notify: bool = True,
) -> None:
    """Append to the ticket's operations log and bump its version; ``notify=False`` queues no
    notification (the log, the version and the live feed are the same)."""
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
    if notify:
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


def list_operations(
    session: Session, *, ticket: Ticket, principal: Principal
) -> list[TicketOperation]:
    """The operations log (clients see the entries meant for them)."""
    query = select(TicketOperation).where(TicketOperation.ticket_id == ticket.id)
    if principal.is_client:
        query = query.where(TicketOperation.visible_to_client.is_(True))
    return list(session.scalars(query.order_by(TicketOperation.id)))
