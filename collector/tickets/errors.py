"""What can go wrong with a ticket, as domain errors; the routes map them to HTTP statuses.

Messages say what is wrong in the ticket's terms; they name no route (the routes add where to
go next when there is one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from collector.tickets.lifecycle import TicketState


class TicketNotFound(LookupError):
    """No such ticket, or not one this caller may see."""


class NotAllowed(PermissionError):
    """Not something this caller may do here: not its dispatch, or not through this route."""


class RestorationNoticeRequired(NotAllowed):
    """A ticket is restored with its restoration notice, never by a plain transition."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"ticket {ref}: restoring needs the restoration notice")
        self.ref = ref


class VersionConflict(ValueError):
    """The ticket changed since the caller read it (ETag / If-Match)."""


class TicketConflict(ValueError):
    """The ticket is not in a state that allows the action (cause alarms active, ...)."""


class ResupervisionRequired(TicketConflict):
    """Manual re-supervision: the NOC confirms the return to nominal before the restoration."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"ticket {ref}: manual re-supervision: the NOC confirms the return to nominal first"
        )
        self.ref = ref


class EscalationLimit(ValueError):
    """Already at the top escalation level."""


class InvalidTicketRequest(ValueError):
    """A request naming something that does not exist (an unknown contract, ...)."""


class DeclarationRefused(ValueError):
    """A declaration that names something the caller has no right to, or bad content."""


class IllegalTransition(ValueError):
    """A transition the lifecycle does not allow; names both states and what is allowed."""

    def __init__(
        self,
        ref: str,
        current: TicketState,
        wanted: TicketState,
        *,
        allowed: Iterable[TicketState],
    ) -> None:
        names = ", ".join(sorted(s.value for s in allowed)) or "none (final state)"
        super().__init__(
            f"ticket {ref}: cannot go from {current.value} to {wanted.value}; allowed: {names}"
        )
        self.current = current
        self.wanted = wanted
        self.allowed = sorted(s.value for s in allowed)

    def problem_members(self) -> dict[str, list[str]]:
        """What the API's problem document adds: the transitions allowed from here."""
        return {"allowed_transitions": self.allowed}
