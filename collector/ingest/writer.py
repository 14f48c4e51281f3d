"""Committing batches: transient database errors retried as a whole, bad messages set aside.

Several instances on PostgreSQL lock the same stream rows and tickets: a deadlock, a
serialization failure or a lost connection aborts a transaction that is fine in itself. Such a
batch is retried whole after a short jittered pause (the instances then no longer collide). Only
a batch failing for another reason is split, and only a message that then fails on its own, with
an error that is not transient, is dead-lettered (``db_error``). A batch that stays transiently
failing is left unstored and unacked: its agents re-send it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from collector.ingest.store import BatchResult, BatchStore, Received, dead_letter

log = logging.getLogger(__name__)

# PostgreSQL: serialization_failure, deadlock_detected (the transaction is rolled back).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def is_transient(err: SQLAlchemyError) -> bool:
    """True for errors that say nothing about the batch: retrying it may well succeed."""
    if isinstance(err, DBAPIError) and err.connection_invalidated:
        return True  # the connection was lost (server restart, network): a new one is taken
    # Deadlocks and serialization failures are OperationalError under psycopg; SQLite says
    # "database is locked" with one too. Checked by SQLSTATE as well, whatever the driver.
    sqlstate = getattr(getattr(err, "orig", None), "sqlstate", None)
    return isinstance(err, OperationalError) or sqlstate in _TRANSIENT_SQLSTATES


class _StillTransient(Exception):
    """Every attempt failed with a transient error."""


@dataclass
class WriteOutcome:
    """A committed batch's result, with how hard it was to get there."""

    result: BatchResult = field(default_factory=BatchResult)
    retries: int = 0
    # Valid messages left unstored (transient errors throughout): their agents re-send them.
    abandoned: int = 0


class BatchWriter:
    """Stores and applies batches in their own transactions (see the module docstring)."""

    def __init__(
        self,
        *,
        sessions: Callable[[], Session],
        store: BatchStore,
        now: Callable[[], datetime],
        max_attempts: int = 6,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._now = now
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep

    def write(self, batch: Sequence[Received]) -> WriteOutcome:
        """Commit ``batch``; the acks in the outcome may be published once this returns."""
        outcome = WriteOutcome()
        try:
            outcome.result = self._attempts(batch, outcome)
            return outcome
        except _StillTransient as err:
            log.error(
                "batch of %d not stored after %d attempts (%s): left for the agents to re-send",
                len(batch),
                self._max_attempts,
                err.__cause__,
            )
            outcome.abandoned = len(batch)
            return outcome
        except SQLAlchemyError:
            # One bad message must not stall ingest: retry one by one, dead-lettering failures.
            log.exception("batch of %d failed; retrying message by message", len(batch))
        for item in batch:
            try:
                single = self._attempts([item], outcome)
            except _StillTransient:
                outcome.abandoned += 1
                continue
            except SQLAlchemyError as err:
                self._dead_letter_db_error(item, err, outcome)
                continue
            _merge(outcome.result, single)
        return outcome

    def _attempts(self, batch: Sequence[Received], outcome: WriteOutcome) -> BatchResult:
        delay = self._backoff_s
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._commit(batch)
            except SQLAlchemyError as err:
                if not is_transient(err):
                    raise
                if attempt == self._max_attempts:
                    raise _StillTransient(str(err)) from err
                log.warning(
                    "transient database error on a batch of %d (attempt %d): %s; retrying",
                    len(batch),
                    attempt,
                    str(err).splitlines()[0],
                )
                outcome.retries += 1
                # Jittered, so that instances which collided do not collide again in step.
                self._sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, self._max_backoff_s)
        raise AssertionError("unreachable")

    def _commit(self, batch: Sequence[Received]) -> BatchResult:
        with self._sessions() as session:
            result = self._store.process(session, batch, now=self._now())
            session.commit()
        return result

    def _dead_letter_db_error(
        self, item: Received, err: SQLAlchemyError, outcome: WriteOutcome
    ) -> None:
        log.error("message on %s dead-lettered after a database error: %s", item.topic, err)
        try:
            with self._sessions() as session:
                dead_letter(session, item, reason="db_error", detail=str(err))
                session.commit()
            outcome.result.dead_letters["db_error"] += 1
        except SQLAlchemyError:
            log.exception("cannot even dead-letter; the agent will re-send it")


def _merge(into: BatchResult, single: BatchResult) -> None:
    into.acks.update(single.acks)
    into.stored += single.stored
    into.duplicates += single.duplicates
    for reason, n in single.dead_letters.items():
        into.dead_letters[reason] += n
