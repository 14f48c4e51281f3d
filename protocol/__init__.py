"""The wire contract between agents and collectors (see docs/protocol.md).

Both sides import these models, so the agent and the collector cannot drift apart.
"""

from protocol.codec import MAX_PAYLOAD_BYTES, DecodeError, decode, encode
from protocol.messages import (
    SCHEMA_VERSION,
    AckMessage,
    AgentMessage,
    AlarmEvent,
    AlarmSnapshot,
    AlarmState,
    BirthMessage,
    CollectorStatus,
    CommandMessage,
    ConfigMessage,
    DeviceHealth,
    HeartbeatMessage,
    ListenerHealth,
    OutboxHealth,
    SeqRange,
    Severity,
    StateEvent,
    TelemetryMessage,
    TelemetrySample,
    Transition,
    WillMessage,
)
from protocol.topics import Channel, Topic, agent_topic, collector_status_topic, parse_topic

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "AckMessage",
    "AgentMessage",
    "AlarmEvent",
    "AlarmSnapshot",
    "AlarmState",
    "BirthMessage",
    "Channel",
    "CollectorStatus",
    "CommandMessage",
    "ConfigMessage",
    "DecodeError",
    "DeviceHealth",
    "HeartbeatMessage",
    "ListenerHealth",
    "OutboxHealth",
    "SeqRange",
    "Severity",
    "StateEvent",
    "TelemetryMessage",
    "TelemetrySample",
    "Topic",
    "Transition",
    "WillMessage",
    "agent_topic",
    "collector_status_topic",
    "decode",
    "encode",
    "parse_topic",
]
