"""The live stream: server-sent events of alarm and ticket changes, scoped to the caller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from collector.access import Principal
from collector.api.deps import CurrentPrincipal
from collector.feed import service

router = APIRouter(prefix="/api/v1", tags=["stream"])

POLL_S = 0.5
KEEPALIVE_S = 15.0


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    max_s: Annotated[float | None, Query(gt=0, le=86_400)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """``text/event-stream`` of changes; resumes after ``Last-Event-ID`` (or ``?after=``)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    start = after
    if start is None and last_event_id and last_event_id.isdigit():
        start = int(last_event_id)
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
