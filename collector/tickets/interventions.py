"""Interventions as ticket operations: on-site dispatch, fiber maintainer, remote, third party.

An on-site dispatch also lets its technician into the site during its slot (no intrusion).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.identity.access import Action, Principal, require
from collector.tickets.errors import NotAllowed
from collector.tickets.models import Ticket, TicketIntervention
from collector.tickets.operations import log_operation
from collector.tickets.queries import get_ticket
from collector.tickets.schemas import InterventionCreate


def check_dispatched(session: Session, *, ticket: Ticket, principal: Principal) -> None:
    """Raise ``NotAllowed`` unless an intervention on the ticket names this technician."""
    named = session.scalar(
        select(TicketIntervention.id)
        .where(
            TicketIntervention.ticket_id == ticket.id,
            TicketIntervention.technician == principal.user_id,
        )
        .limit(1)
    )
    if named is None:
        raise NotAllowed(
            f"ticket {ticket.ref}: {principal.user_id} is not dispatched on it"
            " (no intervention names this technician)"
        )


def add_intervention(
    session: Session, *, ref: str, body: InterventionCreate, principal: Principal, now: datetime
) -> TicketIntervention:
    """Record an intervention as a ticket operation (the NOC; a technician on its dispatch)."""
    require(principal, Action.INTERVENTION_ADD)
    ticket = get_ticket(session, ref=ref, principal=principal, for_update=True)
    fields = body.model_dump()
    if principal.is_technician:
        check_dispatched(session, ticket=ticket, principal=principal)
        # A dispatch lets its technician into the site without an intrusion alarm: the NOC's
        # decision, never one a technician (or a box holding its token) takes for itself.
        if body.kind == "onsite_dispatch":
            raise NotAllowed(f"ticket {ref}: on-site dispatches are the NOC's")
        if body.technician not in (None, principal.user_id):
            raise NotAllowed(
                f"ticket {ref}: a technician records its own interventions, not {body.technician}'s"
            )
        fields["technician"] = principal.user_id
    intervention = TicketIntervention(
        ticket_id=ticket.id,
        site_id=ticket.site_id,
        created_by=principal.user_id,
        created_at=now,
        **fields,
    )
    session.add(intervention)
    session.flush()
    log_operation(
        session,
        ticket=ticket,
        actor=principal.user_id,
        action="intervention",
        now=now,
        detail=f"{_words(body, technician=intervention.technician)}: {body.detail}"[:4000],
    )
    return intervention


def _words(body: InterventionCreate, *, technician: str | None) -> str:
    """How the operations log says what the intervention is."""
    slot = (
        f" {body.slot_start:%Y-%m-%d %H:%M}-{body.slot_end:%H:%M} UTC"
        if body.slot_start and body.slot_end
        else ""
    )
    words = {
        "onsite_dispatch": f"on-site dispatch{slot}",
        "fiber_maintainer": "fiber maintainer called",
        "remote": "remote intervention (rollback plan recorded)",
        "third_party": f"third-party ticket {body.third_party} {body.third_party_ref}",
    }[body.kind]
    return f"{words} (technician {technician})" if technician else words
