"""Annotated dependencies shared by every route: the DB session and the calling principal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock


class Role(StrEnum):
    """Who is calling."""

    NOC = "noc"  # NOC operator: everything
    CLIENT = "client"  # a hosted operator: only its own services and tickets
    TECHNICIAN = "technician"  # field technician: inspections, site and agent detail
    VIEWER = "viewer"  # read-only


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; ``client_id`` is set for (and only for) clients."""

    user_id: str
    role: Role
    client_id: str | None = None


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
