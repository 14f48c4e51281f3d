"""What the NOC reads and sends about ingest: quarantined streams, unenrolled agents, dead
letters, agent enrolment."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from protocol.topics import AGENT_ID_PATTERN


class QuarantinedStream(BaseModel):
    """A stream whose event ``seq`` could not be applied: stored and acked, applied no further."""

    agent_id: str
    stream_id: str
    site_id: str | None
    seq: int | None
    reason: str | None
    since: datetime | None
    applied_through: int


class StreamDecision(BaseModel):
    """Why the NOC releases a stream, or skips the event it failed on (kept in the log)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=2000)


class StreamDecisionRead(BaseModel):
    """The stream after the decision: how far it is applied now."""

    agent_id: str
    stream_id: str
    action: str
    seq: int
    applied_through: int


class UnenrolledAgentRead(BaseModel):
    """An agent id heard on the broker that the inventory does not know."""

    model_config = ConfigDict(from_attributes=True)

    agent_id: str
    claimed_site_id: str
    first_seen: datetime
    last_seen: datetime
    messages: int


class AgentBinding(BaseModel):
    """The one site an agent may speak for."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=128)


class AgentBindingRead(BaseModel):
    """An enrolled agent and its site."""

    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    site_id: str


class DeadLetterRead(BaseModel):
    """A refused message: why, from whom, and how big (its bytes stay in the database)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    topic: str
    agent_id: str | None
    reason: str
    detail: str
    size: int
    sha256: str
    received_at: datetime
