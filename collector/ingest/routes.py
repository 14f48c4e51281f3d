"""NOC routes about what agents send: enrolment (the agent-to-site binding), unenrolled agents
heard on the broker, dead letters, and quarantined streams (release, or skip the failing event).
The look-ups are ``collector.ingest.review``'s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from collector.api.deps import AppClock, DbSession
from collector.identity.access import Action, Principal
from collector.identity.deps import CurrentPrincipal, requires
from collector.ingest import review
from collector.ingest.quarantine import (
    NotQuarantined,
    StreamNotFound,
    release_stream,
)
from collector.ingest.schemas import (
    AgentBinding,
    AgentBindingRead,
    DeadLetterRead,
    QuarantinedStream,
    StreamDecision,
    StreamDecisionRead,
    UnenrolledAgentRead,
)
from collector.ingest.store import ApplyFailed, BatchStore
from collector.inventory.files import bind_agent
from collector.inventory.lookups import get_site
from protocol.topics import AGENT_ID_PATTERN, valid_agent_id

router = APIRouter(prefix="/api/v1", tags=["ingest"])

# Answered by ``install_domain_errors`` with their own messages.
ERROR_STATUS: dict[type[Exception], int] = {StreamNotFound: 404, NotQuarantined: 409}


@router.put(
    "/agents/{agent_id}",
    response_model=AgentBindingRead,
    dependencies=[requires(Action.AGENT_ENROL)],
)
def enrol_agent(agent_id: str, body: AgentBinding, db: DbSession) -> AgentBindingRead:
    """Enrol an agent for its site, or move it to another (NOC): ingest admits its messages for
    that site only (``enrol-agent`` writes the same binding into the inventory files)."""
    if not valid_agent_id(agent_id):
        raise HTTPException(status_code=422, detail=f"agent id must match {AGENT_ID_PATTERN}")
    get_site(db, body.site_id)
    agent = bind_agent(db, agent_id=agent_id, site_id=body.site_id)
    db.commit()
    return AgentBindingRead(agent_id=agent.agent_id, site_id=agent.site_id)


@router.get(
    "/agents/unenrolled",
    response_model=list[UnenrolledAgentRead],
    dependencies=[requires(Action.INGEST_READ)],
)
def list_unenrolled(db: DbSession) -> list[UnenrolledAgentRead]:
    """Agent ids heard on the broker that no enrolment knows, latest first (NOC)."""
    return [UnenrolledAgentRead.model_validate(r) for r in review.unenrolled_agents(db)]


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterRead],
    dependencies=[requires(Action.INGEST_READ)],
)
def list_dead_letters(
    db: DbSession,
    reason: str | None = None,
    agent_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeadLetterRead]:
    """The latest refused messages, by reason or agent (NOC)."""
    letters = review.dead_letters(db, reason=reason, agent_id=agent_id, limit=limit)
    return [DeadLetterRead.model_validate(r) for r in letters]


@router.get(
    "/streams/quarantined",
    response_model=list[QuarantinedStream],
    dependencies=[requires(Action.INGEST_READ)],
)
def list_quarantined(db: DbSession) -> list[QuarantinedStream]:
    """Streams applied no further since one of their events failed, oldest first (NOC)."""
    return [
        QuarantinedStream(
            agent_id=state.agent_id,
            stream_id=state.stream_id,
            site_id=site_id,
            seq=state.quarantine_seq,
            reason=state.quarantine_reason,
            since=state.quarantined_at,
            applied_through=state.applied_through,
        )
        for state, site_id in review.quarantined_with_sites(db)
    ]


@router.post(
    "/agents/{agent_id}/streams/{stream_id}/release",
    response_model=StreamDecisionRead,
    dependencies=[requires(Action.INGEST_DECIDE)],
)
def release(
    agent_id: str,
    stream_id: str,
    body: StreamDecision,
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> StreamDecisionRead:
    """Apply a quarantined stream again from the event it failed on (after a fix)."""
    return _decide(agent_id, stream_id, body, request, db, principal, clock, skip=False)


@router.post(
    "/agents/{agent_id}/streams/{stream_id}/skip",
    response_model=StreamDecisionRead,
    dependencies=[requires(Action.INGEST_DECIDE)],
)
def skip(
    agent_id: str,
    stream_id: str,
    body: StreamDecision,
    request: Request,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
) -> StreamDecisionRead:
    """Count the failing event applied without effect, and apply the stream on from there."""
    return _decide(agent_id, stream_id, body, request, db, principal, clock, skip=True)


def _decide(
    agent_id: str,
    stream_id: str,
    body: StreamDecision,
    request: Request,
    db: DbSession,
    principal: Principal,
    clock: AppClock,
    *,
    skip: bool,
) -> StreamDecisionRead:
    store: BatchStore = request.app.state.ingest_store
    now = clock.now()
    state = release_stream(
        db,
        engine=store.engine,
        agent_id=agent_id,
        stream_id=stream_id,
        actor=principal.user_id,
        reason=body.reason,
        now=now,
        skip=skip,
    )
    seq = state.applied_through if skip else state.applied_through + 1
    try:
        through = store.apply_stream(db, agent_id=agent_id, stream_id=stream_id, now=now)
    except ApplyFailed as failed:
        db.rollback()  # the decision too: the stream stays quarantined as it was
        raise HTTPException(
            status_code=409,
            detail=f"event {failed.seq} still cannot be applied ({failed.__cause__}): "
            "the stream stays quarantined",
        ) from failed
    db.commit()
    return StreamDecisionRead(
        agent_id=agent_id,
        stream_id=stream_id,
        action="skip" if skip else "release",
        seq=seq,
        applied_through=through,
    )
