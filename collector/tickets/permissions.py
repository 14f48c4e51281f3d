"""Which action of the permission table each lifecycle move is: the transition route checks
the move is legal (``check_transition``) and that the caller's role may make it."""

from __future__ import annotations

from collector.identity.access import Action
from collector.tickets.lifecycle import ALLOWED, TicketState

# Every move of the lifecycle is one action of the table (a test checks both ways).
TRANSITION_ACTIONS: dict[tuple[TicketState, TicketState], Action] = {
    (TicketState.OPENED, TicketState.QUALIFIED): Action.TICKET_QUALIFY,
    (TicketState.QUALIFIED, TicketState.IN_PROGRESS): Action.TICKET_START,
    (TicketState.IN_PROGRESS, TicketState.WAITING_CLIENT): Action.TICKET_ASK_CLIENT,
    (TicketState.WAITING_CLIENT, TicketState.IN_PROGRESS): Action.TICKET_RESUME,
    (TicketState.IN_PROGRESS, TicketState.RESTORED): Action.TICKET_RESTORE,
    (TicketState.RESTORED, TicketState.CLOSED): Action.TICKET_CONFIRM_CLOSE,
    (TicketState.RESTORED, TicketState.IN_PROGRESS): Action.TICKET_REOPEN,
    **{
        (state, TicketState.CANCELLED): Action.TICKET_CANCEL
        for state, targets in ALLOWED.items()
        if TicketState.CANCELLED in targets
    },
}


def transition_action(current: TicketState, wanted: TicketState) -> Action:
    """The action a lifecycle move is (the move must be legal: see ``check_transition``)."""
    return TRANSITION_ACTIONS[(current, wanted)]


def _check_moves() -> None:
    """Every lifecycle move has its action and every action here is a move."""
    moves = {(a, b) for a, targets in ALLOWED.items() for b in targets}
    if moves != set(TRANSITION_ACTIONS):
        odd = moves ^ set(TRANSITION_ACTIONS)
        raise AssertionError(f"lifecycle moves and their actions differ: {odd}")


_check_moves()
