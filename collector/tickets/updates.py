"""Progress updates ("points d'avancement") from the NOC or a dispatched technician, and the
client's messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from collector.identity.access import Action, Principal, require
from collector.tickets.interventions import check_dispatched
from collector.tickets.models import Ticket
from collector.tickets.operations import log_operation
from collector.tickets.queries import get_ticket


def progress_update(
    session: Session,
    *,
    ref: str,
    message: str,
    visible_to_client: bool,
    principal: Principal,
    now: datetime,
) -> Ticket:
    """A progress update ("point d'avancement"); the client sees it unless internal."""
    require(principal, Action.TICKET_UPDATE)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    if principal.is_technician:
        check_dispatched(session, ticket=ticket, principal=principal)
    log_operation(
        session,
        ticket=ticket,
        actor=principal.user_id,
        action="client_message" if principal.is_client else "progress",
        now=now,
        detail=message,
        visible_to_client=visible_to_client or principal.is_client,
    )
    return ticket
