"""How long ingest keeps the events it stored on receipt, and the dead letters.

Every event is stored as it came before it is applied, so that none waits in memory. Once
applied, its stored copy only deduplicates re-sends, and the stream's ``applied_through`` does
that for every seq at or below it (``BatchStore`` counts such a re-send as a duplicate without
storing it). So applied events are dropped after a retention, which leaves time to look into
what an agent sent. An event not applied yet (waiting behind a gap for the agent's re-send) is
an alarm still to come: it is never dropped. Without this, a national fleet's events would fill
the disk: every door opening, every power cut, kept for ever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from collector.ingest.models import DeadLetter, InboundEvent

DEFAULT_EVENT_RETENTION = timedelta(days=30)
# Dead letters are kept for a look into what an agent sent, not for ever: a hostile box
# sending 256 KiB of garbage ten times a second would otherwise fill the disk in days.
DEAD_LETTER_RETENTION = timedelta(days=30)
DEAD_LETTER_MAX_BYTES = 256 * 1024 * 1024


def prune_applied_events(
    session: Session, *, now: datetime, retention: timedelta = DEFAULT_EVENT_RETENTION
) -> int:
    """Delete applied events received before ``now - retention``; returns how many."""
    result = session.execute(
        delete(InboundEvent).where(
            InboundEvent.received_at < now - retention, InboundEvent.applied.is_(True)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune_dead_letters(
    session: Session,
    *,
    now: datetime,
    retention: timedelta = DEAD_LETTER_RETENTION,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> int:
    """Delete dead letters older than ``retention``, then the oldest beyond ``max_bytes`` of
    kept payloads; returns how many. Their counts by reason stay (``DeadLetterTotal``)."""
    aged = session.execute(delete(DeadLetter).where(DeadLetter.received_at < now - retention))
    pruned = int(getattr(aged, "rowcount", 0) or 0)
    kept = 0
    newest_first = session.execute(
        select(DeadLetter.id, func.length(DeadLetter.payload)).order_by(DeadLetter.id.desc())
    )
    for letter_id, size in newest_first:
        kept += int(size or 0)
        if kept > max_bytes:
            over = session.execute(delete(DeadLetter).where(DeadLetter.id <= letter_id))
            pruned += int(getattr(over, "rowcount", 0) or 0)
            break
    return pruned
