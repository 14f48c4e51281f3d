"""Annotated dependencies shared by every route: the DB session, the clock, the ``If-Match``
precondition. The caller and the permission a route needs are ``collector.identity.deps``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock

__all__ = ["AppClock", "DbSession", "IfMatchVersion", "get_clock", "get_db"]

# Row ids and versions are 64-bit signed integers in both databases.
MAX_ID = 2**63 - 1


def get_db(request: Request) -> Iterator[Session]:
    """One session per request, from the factory stored on the app."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


def get_clock(request: Request) -> Clock:
    """The clock the app was built with (tests and simulations inject a manual one)."""
    clock: Clock = request.app.state.clock
    return clock


DbSession = Annotated[Session, Depends(get_db)]
AppClock = Annotated[Clock, Depends(get_clock)]
# "7" (the version alone) or "7.<digest>" (as ``caching.view_etag`` sends them).
_ETAG = re.compile(r'"([0-9]{1,19})(?:\.[0-9a-f]{16})?"')


def if_match_version(
    if_match: Annotated[
        str | None,
        Header(description='The ETag read before (e.g. "7"), or *; a stale one answers 412'),
    ] = None,
) -> int | None:
    """The ticket version an ``If-Match`` header expects (None: no header, or ``*``).

    Anything but an ETag as this API sends them is a 400: a precondition the server cannot
    read must never be skipped (the change would go through unchecked)."""
    if if_match is None:
        return None
    value = if_match.strip()
    if value == "*":
        return None
    match = _ETAG.fullmatch(value)
    if match is None or int(match.group(1)) > MAX_ID:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise HTTPException(
            status_code=400,
            detail=f'If-Match: expected the ETag the ticket was read with, e.g. "7"; got {shown!r}',
        )
    return int(match.group(1))


IfMatchVersion = Annotated[int | None, Depends(if_match_version)]
