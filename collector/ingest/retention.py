"""How long ingest keeps the events it stored on receipt.

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

from sqlalchemy import delete
from sqlalchemy.orm import Session

from collector.ingest.models import InboundEvent

DEFAULT_EVENT_RETENTION = timedelta(days=30)


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
