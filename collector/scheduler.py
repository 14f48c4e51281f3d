"""Scheduled work of the collector: presence timeouts, ticket timers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from collector.alarms import AlarmEngine, AlarmListener
from collector.alarms.presence import check_presence
from collector.feed import service as feed
from collector.maintenance.timers import run_maintenance_timers
from collector.notifications import service as notifications
from collector.telemetry.service import rollup_and_prune
from collector.tickets.service import run_due_timers

# Telemetry roll-up and pruning is bulk work: every few minutes is plenty.
ROLLUP_EVERY = timedelta(minutes=5)


class Scheduler:
    """Runs every due job in the caller's transaction; idempotent, so any instance may run it."""

    def __init__(
        self,
        *,
        listeners: Sequence[AlarmListener],
        will_grace_s: float,
        heartbeat_timeout_s: float,
    ) -> None:
        self._engine = AlarmEngine(listeners)
        self._last_rollup: datetime | None = None
        self._will_grace_s = will_grace_s
        self._heartbeat_timeout_s = heartbeat_timeout_s

    def run(self, session: Session, *, now: datetime) -> None:
        """Everything due at ``now``."""
        check_presence(
            session,
            engine=self._engine,
            now=now,
            will_grace_s=self._will_grace_s,
            heartbeat_timeout_s=self._heartbeat_timeout_s,
        )
        self._engine.settle_flapping(session, now=now)
        run_maintenance_timers(session, engine=self._engine, now=now)
        run_due_timers(session, now=now)
        feed.prune(session, now=now)
        if self._last_rollup is None or now - self._last_rollup >= ROLLUP_EVERY:
            rollup_and_prune(session, now=now)
            self._last_rollup = now

    def deliver(self, session: Session, *, now: datetime) -> int:
        """Send due notifications (its own transaction: no lock is held while sending)."""
        return notifications.deliver_due(session, now=now)
