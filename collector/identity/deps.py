"""The route dependencies of identity: who the caller is (a bearer token, or 401) and the one
permission a route needs (403 before the body is looked at). Every feature's routes use them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock
from collector.identity.access import Action, Principal, require
from collector.identity.tokens import principal_for_token


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller from ``Authorization: Bearer <token>``, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.query_params.get("access_token", "")  # EventSource cannot set headers
    if not token:
        raise HTTPException(status_code=401, detail="missing bearer token")
    factory: sessionmaker[Session] = request.app.state.session_factory
    clock: Clock = request.app.state.clock
    with factory() as session:
        principal = principal_for_token(session, token=token.strip(), now=clock.now())
    if principal is None:
        raise HTTPException(status_code=401, detail="invalid or expired token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True, slots=True)
class Permit:
    """The route dependency that checks the caller's role against the permission table.

    It runs before the body is looked at: a role without the right gets 403 whatever it sends.
    """

    action: Action

    def __call__(self, principal: CurrentPrincipal) -> None:
        require(principal, self.action)


def requires(action: Action) -> Any:
    """``dependencies=[requires(Action.X)]``: the one permission a route needs."""
    return Depends(Permit(action))
