"""The ticket lifecycle: which transitions are legal, and a clear refusal for the others.

This module says what is legal; ``collector.tickets.transitions.move`` is the one place a
ticket's state changes.
"""

from __future__ import annotations

from enum import StrEnum

from collector.tickets.errors import IllegalTransition


class TicketState(StrEnum):
    """States of a ticket, from the operator's incident process."""

    OPENED = "opened"  # "horodatage début"
    QUALIFIED = "qualified"  # criticality set
    IN_PROGRESS = "in_progress"  # analysis, diagnosis, repair
    WAITING_CLIENT = "waiting_client"  # SLA clock frozen
    RESTORED = "restored"  # restoration notice sent
    CLOSED = "closed"
    CANCELLED = "cancelled"


# Every ticket starts here (the model's default: nothing assigns it).
INITIAL_STATE = TicketState.OPENED

OPEN_STATES = frozenset(
    {
        TicketState.OPENED,
        TicketState.QUALIFIED,
        TicketState.IN_PROGRESS,
        TicketState.WAITING_CLIENT,
        TicketState.RESTORED,
    }
)
FINAL_STATES = frozenset({TicketState.CLOSED, TicketState.CANCELLED})

ALLOWED: dict[TicketState, frozenset[TicketState]] = {
    TicketState.OPENED: frozenset({TicketState.QUALIFIED, TicketState.CANCELLED}),
    TicketState.QUALIFIED: frozenset({TicketState.IN_PROGRESS, TicketState.CANCELLED}),
    TicketState.IN_PROGRESS: frozenset(
        {TicketState.WAITING_CLIENT, TicketState.RESTORED, TicketState.CANCELLED}
    ),
    TicketState.WAITING_CLIENT: frozenset({TicketState.IN_PROGRESS, TicketState.CANCELLED}),
    # Back to in progress: the client refused the restoration, or the fault recurred.
    TicketState.RESTORED: frozenset({TicketState.CLOSED, TicketState.IN_PROGRESS}),
    TicketState.CLOSED: frozenset(),
    TicketState.CANCELLED: frozenset(),
}


def check_transition(ref: str, current: TicketState, wanted: TicketState) -> None:
    """Raise ``IllegalTransition`` unless ``current -> wanted`` is legal."""
    if wanted not in ALLOWED[current]:
        raise IllegalTransition(ref, current, wanted, allowed=ALLOWED[current])
