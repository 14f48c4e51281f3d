"""The route dependencies of identity: who the caller is (a bearer token, or 401) and the one
permission a route needs (403 before the body is looked at). Every feature's routes use them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock
from collector.identity.access import Action, Principal, require
from collector.identity.tokens import principal_for_token

# Declared as a security scheme so the OpenAPI document has its Authorize button and marks
# every route that needs a token; the checks stay ours (``auto_error=False``).
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description=(
        "Jeton d'accès (`shelterwatch collector create-token`) / access token. The live feed "
        "(EventSource cannot set headers) also takes `?access_token=`."
    ),
)


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """FastAPI dependency: the caller from ``Authorization: Bearer <token>``, or 401."""
    token = credentials.credentials if credentials is not None else ""
    if not token:
        token = request.query_params.get("access_token", "")  # EventSource cannot set headers
    if not token:
        raise HTTPException(status_code=401, detail="problem.detail.missing_token")
    factory: sessionmaker[Session] = request.app.state.session_factory
    clock: Clock = request.app.state.clock
    with factory() as session:
        principal = principal_for_token(session, token=token.strip(), now=clock.now())
    if principal is None:
        raise HTTPException(status_code=401, detail="problem.detail.invalid_token")
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
