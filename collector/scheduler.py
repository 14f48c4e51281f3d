"""Scheduled work of the collector: presence timeouts, ticket timers, retention.

Every instance ticks; one at a time does the work (a PostgreSQL advisory lock held for the
transaction), so escalations, auto-closes and presence alarms happen once however many
instances run. Deliveries are shared instead: each instance claims due notifications with
SKIP LOCKED.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from collector.alarms import AlarmEngine
from collector.alarms.presence import check_presence
from collector.feed import service as feed
from collector.ingest.retention import prune_applied_events, prune_dead_letters
from collector.inspections.timers import run_inspection_timers
from collector.maintenance.timers import run_maintenance_timers
from collector.notifications import service as notifications
from collector.storage.locks import try_lock
from collector.telemetry.service import rollup_and_prune
from collector.tickets.timers import run_due_timers

# Telemetry roll-up and the pruning of what is past its retention are bulk work: every few
# minutes is plenty.
ROLLUP_EVERY = timedelta(minutes=5)


SCHEDULER_LOCK = "scheduler"
PRESENCE_LOCK = "presence"


class Scheduler:
    """Runs every due job in the caller's transaction, in one instance at a time."""

    def __init__(
        self,
        *,
        engine: AlarmEngine,
        will_grace_s: float,
        heartbeat_timeout_s: float,
    ) -> None:
        self._engine = engine
        self._last_rollup: datetime | None = None
        self._will_grace_s = will_grace_s
        self.heartbeat_timeout_s = heartbeat_timeout_s

    def run(
        self,
        session: Session,
        *,
        now: datetime,
        skipped_s: float = 0.0,
        watching_for_s: float = float("inf"),
    ) -> bool:
        """Everything due at ``now``. ``skipped_s`` is time a test clock jumped over lately,
        which is not silence on the agents' part; ``watching_for_s`` is how long this collector
        has been hearing the broker: presence is judged only after a full heartbeat timeout of
        listening, so a broker outage (or the collector's own restart) is not taken for every
        agent going silent, nor are the Wills the broker sends as it shuts down.

        Returns False when another instance holds the timers at this tick (presence may still
        have been checked here)."""
        # Presence has its own lock: an instance that restarted lately skips it (it has not
        # listened long enough) and must not keep one that has from taking it.
        if watching_for_s >= self.heartbeat_timeout_s and try_lock(session, PRESENCE_LOCK):
            check_presence(
                session,
                engine=self._engine,
                now=now,
                will_grace_s=self._will_grace_s,
                heartbeat_timeout_s=self.heartbeat_timeout_s + skipped_s,
            )
        if not try_lock(session, SCHEDULER_LOCK):
            return False
        self._engine.settle_flapping(session, now=now)
        self._engine.settle_misbehaving(session, now=now)
        run_maintenance_timers(session, engine=self._engine, now=now)
        run_inspection_timers(session, engine=self._engine, now=now)
        run_due_timers(session, now=now)
        feed.prune(session, now=now)
        if self._last_rollup is None or now - self._last_rollup >= ROLLUP_EVERY:
            rollup_and_prune(session, now=now)
            prune_applied_events(session, now=now)
            prune_dead_letters(session, now=now)
            self._last_rollup = now
        return True

    def deliver(self, session: Session, *, now: datetime) -> int:
        """Send due notifications (its own transaction: no lock is held while sending)."""
        return notifications.deliver_due(session, now=now)
