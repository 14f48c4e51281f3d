"""Start and end of planned works: SLA time is excluded, alarms still active become incidents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.alarms.engine import AlarmEngine
from collector.maintenance.models import MaintenanceWindow
from collector.sla import ClockState
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket
from collector.tickets.sla import CLOCK_FOR_STATE, record_clock


def run_maintenance_timers(session: Session, *, engine: AlarmEngine, now: datetime) -> None:
    """Idempotent: each window starts once and ends once."""
    for window in session.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.starts_at <= now,
            MaintenanceWindow.started.is_(False),
            MaintenanceWindow.takes_place(),
        )
    ):
        window.started = True
        for ticket in _open_tickets(session, window.site_id):
            record_clock(
                session,
                ticket,
                state=ClockState.PLANNED_WORKS,
                at=now,
                reason=f"planned works #{window.id}",
                actor="system",
            )
    for window in session.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.ends_at <= now,
            MaintenanceWindow.ended.is_(False),
            MaintenanceWindow.takes_place(),
        )
    ):
        window.ended = True
        for ticket in _open_tickets(session, window.site_id):
            record_clock(
                session,
                ticket,
                state=CLOCK_FOR_STATE[TicketState(ticket.state)],
                at=now,
                reason=f"planned works #{window.id} ended",
                actor="system",
            )
        engine.end_maintenance(session, site_id=window.site_id, now=now)


def _open_tickets(session: Session, site_id: str) -> list[Ticket]:
    return list(
        session.scalars(
            select(Ticket).where(
                Ticket.site_id == site_id, Ticket.state.in_([s.value for s in OPEN_STATES])
            )
        )
    )
