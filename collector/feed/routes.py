"""The live stream: server-sent events of alarm and ticket changes, scoped to the caller."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from collector.api.deps import MAX_ID
from collector.feed import service
from collector.identity.access import Action, Principal
from collector.identity.deps import CurrentPrincipal, requires

router = APIRouter(prefix="/api/v1", tags=["stream"])

POLL_S = 0.5
KEEPALIVE_S = 15.0
_EVENT_ID = re.compile(r"[0-9]{1,19}")


def last_event_id(
    last_event_id: Annotated[
        str | None, Header(description="the id of the last event received (a browser resumes)")
    ] = None,
) -> int | None:
    """The ``Last-Event-ID`` to resume after; 400 unless it is an event id this stream sent.

    Checked before the stream opens: once it is open, an error can no longer be answered."""
    if not last_event_id:  # absent, or empty: nothing received yet
        return None
    value = last_event_id.strip()
    if _EVENT_ID.fullmatch(value) is None or int(value) > MAX_ID:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise HTTPException(
            status_code=400,
            detail=f"Last-Event-ID: expected an event id from this stream, got {shown!r}",
        )
    return int(value)


@router.get(
    "/stream", response_class=StreamingResponse, dependencies=[requires(Action.STREAM_READ)]
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    resume_after: Annotated[int | None, Depends(last_event_id)],
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    max_s: Annotated[float | None, Query(gt=0, le=86_400)] = None,
) -> StreamingResponse:
    """``text/event-stream`` of changes; resumes after ``?after=``, else ``Last-Event-ID``
    (400 when either is not an event id)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    start = after if after is not None else resume_after
    if start is None:
        with factory() as session:
            start = service.last_id(session)
    return StreamingResponse(
        _events(request, factory, principal, start, max_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request,
    factory: sessionmaker[Session],
    principal: Principal,
    after: int,
    max_s: float | None,
) -> AsyncIterator[str]:
    last = after
    idle = 0.0
    loop = asyncio.get_running_loop()
    # ``max_s`` bounds a stream for scripts and tests; browsers reconnect with Last-Event-ID.
    end = loop.time() + max_s if max_s is not None else float("inf")
    yield "retry: 2000\n\n"
    while loop.time() < end and not await request.is_disconnected():
        with factory() as session:
            changes = service.read_since(session, principal=principal, after_id=last)
            rows = [(c.id, c.kind, c.payload) for c in changes]
        for change_id, kind, payload in rows:
            if (
                kind == "ticket"
                and principal.is_client
                and not json.loads(payload).get("visible_to_client", True)
            ):
                last = change_id
                continue
            yield f"id: {change_id}\nevent: {kind}\ndata: {payload}\n\n"
            last = change_id
        if rows:
            idle = 0.0
            continue
        await asyncio.sleep(POLL_S)
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"


def _internal(payload: str) -> bool:
    # Ticket log entries the NOC keeps to itself never reach a client's stream.
    return not json.loads(payload).get("visible_to_client", True)
