"""Annotated dependencies shared by every route: the DB session, the clock, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock
from collector.access import Principal, Role
from collector.api.auth import current_principal

__all__ = ["AppClock", "CurrentPrincipal", "DbSession", "Principal", "Role", "get_clock", "get_db"]


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
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
