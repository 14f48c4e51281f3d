"""The ticket lifecycle: which transitions are legal, and a clear refusal for the others."""

from __future__ import annotations

from enum import StrEnum


class TicketState(StrEnum):
    """States of a ticket, from the operator's incident process."""

    OPENED = "opened"  # "horodatage début"
    QUALIFIED = "qualified"  # criticality set
    IN_PROGRESS = "in_progress"  # analysis, diagnosis, repair
    WAITING_CLIENT = "waiting_client"  # SLA clock frozen
    RESTORED = "restored"  # restoration notice sent
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATES = frozenset(
    {
        TicketState.OPENED,
        TicketState.QUALIFIED,
        TicketState.IN_PROGRESS,
        TicketState.WAITING_CLIENT,
        TicketState.RESTORED,
    }
)

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


class IllegalTransition(ValueError):
    """A transition the lifecycle does not allow; names both states and what is allowed."""

    def __init__(self, ref: str, current: TicketState, wanted: TicketState) -> None:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "none (final state)"
        super().__init__(
            f"ticket {ref}: cannot go from {current.value} to {wanted.value}; allowed: {allowed}"
        )
        self.current = current
        self.wanted = wanted


def check_transition(ref: str, current: TicketState, wanted: TicketState) -> None:
    """Raise ``IllegalTransition`` unless ``current -> wanted`` is legal."""
    if wanted not in ALLOWED[current]:
        raise IllegalTransition(ref, current, wanted)
