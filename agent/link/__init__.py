"""The agent's MQTT link: session, birth/Will, heartbeat, paced publishing, collector acks."""

from agent.link.backoff import FullJitterBackoff
from agent.link.fixed_status import FixedStatus
from agent.link.link import AgentLink, LinkStatus, StatusProvider

__all__ = [
    "AgentLink",
    "FixedStatus",
    "FullJitterBackoff",
    "LinkStatus",
    "StatusProvider",
]
