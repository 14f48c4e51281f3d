"""Versioned MQTT topic namespace: ``sw/v1/agents/{agent_id}/{channel}``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

NAMESPACE = "sw/v1"
# Agent ids become topic levels and database keys: keep them boring.
AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_AGENT_ID_RE = re.compile(AGENT_ID_PATTERN)


class Channel(StrEnum):
    """The per-agent topic channels and who publishes on each."""

    EVENTS = "events"  # agent -> collector, alarm and state events (gapless seq)
    TELEMETRY = "telemetry"  # agent -> collector, sample batches (may be thinned)
    STATUS = "status"  # agent -> collector, retained birth / Last Will
    HEARTBEAT = "heartbeat"  # agent -> collector
    ACK = "ack"  # collector -> agent, after SQL commit
    CONFIG = "config"  # collector -> agent, retained
    CMD = "cmd"  # collector -> agent


AGENT_TO_COLLECTOR = (Channel.EVENTS, Channel.TELEMETRY, Channel.STATUS, Channel.HEARTBEAT)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed agent topic."""

    agent_id: str
    channel: Channel


def valid_agent_id(agent_id: str) -> bool:
    """True when ``agent_id`` may be used as a topic level."""
    return bool(_AGENT_ID_RE.match(agent_id))


def agent_topic(agent_id: str, channel: Channel) -> str:
    """Topic of one agent's channel."""
    if not valid_agent_id(agent_id):
        raise ValueError(f"invalid agent id {agent_id!r}: must match {AGENT_ID_PATTERN}")
    return f"{NAMESPACE}/agents/{agent_id}/{channel.value}"


def agent_subscription(channel: Channel) -> str:
    """Wildcard filter matching one channel of every agent."""
    return f"{NAMESPACE}/agents/+/{channel.value}"


def shared_subscription(group: str, channel: Channel) -> str:
    """Shared-subscription filter so several collector instances split the load."""
    return f"$share/{group}/{agent_subscription(channel)}"


def collector_status_topic(instance_id: str) -> str:
    """Retained status topic of one collector instance (with its own Last Will)."""
    return f"{NAMESPACE}/collectors/{instance_id}/status"


COLLECTOR_STATUS_FILTER = f"{NAMESPACE}/collectors/+/status"


def parse_topic(topic: str) -> Topic:
    """Parse an agent topic; raise ``ValueError`` saying what is wrong."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != NAMESPACE or parts[2] != "agents":
        raise ValueError(f"topic {topic!r} is not under {NAMESPACE}/agents/<id>/<channel>")
    agent_id, channel = parts[3], parts[4]
    if not valid_agent_id(agent_id):
        raise ValueError(f"topic {topic!r}: invalid agent id {agent_id!r}")
    try:
        return Topic(agent_id=agent_id, channel=Channel(channel))
    except ValueError as err:
        raise ValueError(f"topic {topic!r}: unknown channel {channel!r}") from err


def collector_id_from_status_topic(topic: str) -> str:
    """Instance id of a collector status topic."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[2] != "collectors" or parts[4] != "status":
        raise ValueError(f"topic {topic!r} is not a collector status topic")
    return parts[3]
