"""Problem routes (thin): list, read, create, confirm / reject / close, link a ticket."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.problems import service
from collector.problems.models import Problem

router = APIRouter(prefix="/api/v1/problems", tags=["problems"])

ERROR_STATUS: dict[type[Exception], int] = {
    service.ProblemNotFound: 404,
    service.ProblemConflict: 409,
}


class ProblemRead(BaseModel):
    """A problem with its linked incidents."""

    model_config = ConfigDict(from_attributes=True)

    ref: str
    site_id: str
    equipment_id: str
    alarm_type: str
    state: str
    proposed_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    closed_at: datetime | None
    reason: str
    root_cause: str
    permanent_fix: str
    tickets: list[str] = []


class ProblemCreate(BaseModel):
    """A problem the NOC records itself."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=128)
    equipment_id: str = Field(min_length=1, max_length=128)
    alarm_type: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=4000)
    ticket_refs: list[str] = Field(default_factory=list, max_length=200)


class ProblemDecision(BaseModel):
    """Confirm or reject a proposed problem, or close a confirmed one."""

    model_config = ConfigDict(extra="forbid")

    to: Literal["confirmed", "rejected", "closed"]
    reason: str = Field(default="", max_length=4000)
    root_cause: str = Field(default="", max_length=8000)
    permanent_fix: str = Field(default="", max_length=8000)


class ProblemLink(BaseModel):
    """Link an incident to the problem."""

    model_config = ConfigDict(extra="forbid")

    ticket_ref: str = Field(min_length=1, max_length=32)


def _read(db: DbSession, problem: Problem) -> ProblemRead:
    return ProblemRead.model_validate(problem).model_copy(
        update={"tickets": service.ticket_refs(db, problem)}
    )


@router.get("", response_model=list[ProblemRead], dependencies=[requires(Action.PROBLEM_READ)])
def list_problems(
    db: DbSession,
    principal: CurrentPrincipal,
    state: Literal["proposed", "confirmed", "rejected", "closed"] | None = None,
) -> list[ProblemRead]:
    """Problems, newest first (clients: at their sites)."""
    return [_read(db, p) for p in service.list_problems(db, principal=principal, state=state)]


@router.post(
    "", response_model=ProblemRead, status_code=201, dependencies=[requires(Action.PROBLEM_EDIT)]
)
def create(
    body: ProblemCreate, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> ProblemRead:
    """Record a problem (NOC): confirmed at once, with the incidents it explains."""
    problem = service.create(db, **body.model_dump(), principal=principal, now=clock.now())
    db.commit()
    return _read(db, problem)


@router.get("/{ref}", response_model=ProblemRead, dependencies=[requires(Action.PROBLEM_READ)])
def get_problem(ref: str, db: DbSession, principal: CurrentPrincipal) -> ProblemRead:
    """One problem and its incidents."""
    return _read(db, service.get(db, ref=ref, principal=principal))


@router.post(
    "/{ref}/decision", response_model=ProblemRead, dependencies=[requires(Action.PROBLEM_EDIT)]
)
def decide(
    ref: str, body: ProblemDecision, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> ProblemRead:
    """Confirm or reject a proposed problem; close a confirmed one with its root cause and
    permanent fix (NOC)."""
    problem = service.decide(db, ref=ref, **body.model_dump(), principal=principal, now=clock.now())
    db.commit()
    return _read(db, problem)


@router.post(
    "/{ref}/tickets", response_model=ProblemRead, dependencies=[requires(Action.PROBLEM_EDIT)]
)
def link(
    ref: str, body: ProblemLink, db: DbSession, principal: CurrentPrincipal, clock: AppClock
) -> ProblemRead:
    """Link an incident to an open problem (NOC)."""
    problem = service.link(
        db, ref=ref, ticket_ref=body.ticket_ref, principal=principal, now=clock.now()
    )
    db.commit()
    return _read(db, problem)
