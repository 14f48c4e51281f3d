"""Committing batches: transient database errors retried as a whole, bad messages set aside.

Several instances on PostgreSQL lock the same stream rows and tickets: a deadlock, a
serialization failure or a lost connection aborts a transaction that is fine in itself. Such a
batch is retried whole after a short jittered pause (the instances then no longer collide).

A batch failing for any other reason is never lost as a whole: it is split in halves, and the
halves again, until the message at fault is alone (a few transactions for one bad message in
two thousand, not two thousand). That message then costs only itself: an event whose apply
fails is stored and its stream quarantined (``collector.ingest.quarantine``), so the agent is
acked and every other stream goes on; anything else is dead-lettered (``db_error`` or
``internal_error``). A batch that stays transiently failing is left unstored and unacked: its
agents re-send it.
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

from collector.ingest.admission import dead_letter
from collector.ingest.quarantine import quarantine_stream
from collector.ingest.store import ApplyFailed, BatchResult, BatchStore, Received
from protocol import AlarmEvent, DecodeError, StateEvent, decode

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


def _transient(err: BaseException) -> bool:
    """A transient database error, also when it surfaced while applying an event."""
    cause = err.__cause__ if isinstance(err, ApplyFailed) else err
    return isinstance(cause, SQLAlchemyError) and is_transient(cause)


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
        self._write_part(batch, outcome)
        return outcome

    def _write_part(self, part: Sequence[Received], outcome: WriteOutcome) -> None:
        """Commit ``part``, or its halves, down to the one message at fault."""
        try:
            _merge(outcome.result, self._attempts(part, outcome))
            return
        except _StillTransient as err:
            log.error(
                "batch of %d not stored after %d attempts (%s): left for the agents to re-send",
                len(part),
                self._max_attempts,
                err.__cause__,
            )
            outcome.abandoned += len(part)
            return
        except Exception as err:
            if len(part) == 1:
                self._set_aside(part[0], err, outcome)
                return
            # One bad message must not stall ingest: find it, the others go on.
            log.warning("batch of %d failed (%s); splitting it", len(part), _brief(err))
        half = len(part) // 2
        self._write_part(part[:half], outcome)
        self._write_part(part[half:], outcome)

    def _attempts(self, batch: Sequence[Received], outcome: WriteOutcome) -> BatchResult:
        delay = self._backoff_s
        for attempt in range(1, self._max_attempts + 1):
            try:
                return self._commit(batch)
            except Exception as err:
                if not _transient(err):
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

    def _set_aside(self, item: Received, err: Exception, outcome: WriteOutcome) -> None:
        """A message failing on its own: its stream quarantined if applying it (or what it
        unblocked) failed, else dead-lettered."""
        if isinstance(err, ApplyFailed):
            try:
                # Stored (and acked) once its stream applies nothing.
                single = self._quarantine(
                    err.agent_id,
                    err.stream_id,
                    err.seq,
                    error=_brief(err.__cause__ or err),
                    then_store=item,
                )
                assert single is not None
                _merge(outcome.result, single)
                return
            except Exception as again:
                if _transient(again):
                    outcome.abandoned += 1
                    return
                err = again
        reason = "db_error" if isinstance(err, SQLAlchemyError) else "internal_error"
        log.error(
            "message on %s dead-lettered (%s): %s", item.topic, reason, _brief(err), exc_info=err
        )
        try:
            with self._sessions() as session:
                dead_letter(
                    session,
                    topic=item.topic,
                    payload=item.payload,
                    received_at=item.received_at,
                    reason=reason,
                    detail=_brief(err),
                )
                session.commit()
            outcome.result.dead_letters[reason] += 1
        except SQLAlchemyError:
            log.exception("cannot even dead-letter; the agent will re-send it")
            outcome.abandoned += 1
        self._stall_visibly(item, reason=reason, err=err)

    def _stall_visibly(self, item: Received, *, reason: str, err: Exception) -> None:
        """An event that cannot even be stored leaves a gap its stream waits behind: the
        stream is quarantined at it, so the NOC sees the stall (and may skip the event)."""
        try:
            _, message = decode(item.topic, item.payload)
        except DecodeError:
            return
        if not isinstance(message, AlarmEvent | StateEvent):
            return
        try:
            self._quarantine(
                message.agent_id,
                message.stream_id,
                message.seq,
                error=f"not stored ({reason}): {_brief(err)}",
            )
        except SQLAlchemyError:
            log.exception("cannot quarantine %s/%s", message.agent_id, message.stream_id)

    def _quarantine(
        self,
        agent_id: str,
        stream_id: str,
        seq: int,
        *,
        error: str,
        then_store: Received | None = None,
    ) -> BatchResult | None:
        """Quarantine a stream at ``seq`` in a transaction of its own, storing ``then_store``
        in it (its stream applies nothing any more); what storing it gave."""
        stored = None
        with self._sessions() as session:
            quarantine_stream(
                session,
                engine=self._store.engine,
                agent_id=agent_id,
                stream_id=stream_id,
                seq=seq,
                error=error,
                now=self._now(),
            )
            if then_store is not None:
                stored = self._store.process(session, [then_store], now=self._now())
            session.commit()
        log.error("stream %s/%s quarantined at event %d: %s", agent_id, stream_id, seq, error)
        return stored

    def _commit(self, batch: Sequence[Received]) -> BatchResult:
        with self._sessions() as session:
            result = self._store.process(session, batch, now=self._now())
            session.commit()
        return result


def _brief(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}"[:500]


def _merge(into: BatchResult, single: BatchResult) -> None:
    into.acks.update(single.acks)
    into.stored += single.stored
    into.duplicates += single.duplicates
    for reason, n in single.dead_letters.items():
        into.dead_letters[reason] += n
