"""Payload models of the wire contract, schema version 1.

Every agent message carries the envelope: schema version ``v``, ``kind``, ``agent_id``,
``stream_id`` (random id created with the outbox file), ``seq``, edge timestamp ``ts``,
``clock_synced`` and, once the agent has measured it, ``clock_offset_s``. Receivers ignore
unknown fields (additive changes stay within v1).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from protocol.topics import AGENT_ID_PATTERN

SCHEMA_VERSION: Final = 1

# Identifiers of sites, equipment, points and alarm types end up in URLs and SQL keys.
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
AgentId = Annotated[str, Field(pattern=AGENT_ID_PATTERN)]
StreamId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
# Numbers are numbers: a string ("1") or a boolean (true) is refused, not read as one.
Seq = Annotated[int, Strict(), Field(ge=0, le=2**62)]
Count = Annotated[int, Strict(), Field(ge=0)]
Boot = Annotated[int, Strict(), Field(ge=1)]
Flag = Annotated[bool, Strict()]
# Measured values are finite: NaN, Infinity and 1e999 (read as infinity) are refused.
Finite = Annotated[float, Field(allow_inf_nan=False)]
# Collector time minus edge wall-clock time. A Pi without RTC nor saved time boots in 1970:
# a century either way covers that, and no more.
MAX_CLOCK_OFFSET_S = 100 * 366 * 86_400
OffsetSeconds = Annotated[Finite, Field(ge=-MAX_CLOCK_OFFSET_S, le=MAX_CLOCK_OFFSET_S)]
# What an alarm carries as its value: a measure, a contact state or a word.
AlarmValue = Finite | Flag | Annotated[str, Field(max_length=200)] | None
# Free-form details of a state event stay small and shallow (see ``_bounded_detail``).
MAX_DETAIL_DEPTH = 6
MAX_DETAIL_BYTES = 8_192
# A birth lists every active alarm of one site; far more than any site has is an attack.
MAX_SNAPSHOT_ALARMS = 500


# Strict: in JSON, RFC 3339 text with an offset (pydantic would otherwise read a number as
# seconds since 1970); in Python, an aware datetime. Checked by pydantic's core rather than by
# a Python validator, which cost a tenth of the collector's ingest time (four per telemetry
# message). ``protocol.codec`` words the refusal of a number for the dead-letter table.
Timestamp = Annotated[AwareDatetime, Strict()]


def bounded_json(value: Any, *, max_depth: int, max_bytes: int) -> None:
    """ValueError, saying which limit it breaks, unless ``value`` nests at most ``max_depth``
    deep and encodes in at most ``max_bytes``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ValueError(f"nested more than {max_depth} deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    size = len(json.dumps(value))
    if size > max_bytes:
        raise ValueError(f"{size} bytes encoded, at most {max_bytes}")


class Severity(StrEnum):
    """Alarm severity as evaluated at the edge."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class Transition(StrEnum):
    """Direction of an alarm transition."""

    RAISED = "raised"
    CLEARED = "cleared"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Envelope(_Model):
    v: Literal[1] = SCHEMA_VERSION
    agent_id: AgentId
    stream_id: StreamId
    seq: Seq
    ts: Timestamp
    clock_synced: Flag
    # Collector time minus edge time when the message was recorded, as the agent measured it on
    # live round trips (docs/protocol.md, "Time"); absent (older agents too) when it has none.
    clock_offset_s: OffsetSeconds | None = None


class AlarmEvent(_Envelope):
    """An alarm transition (events channel). ``seq`` is in the gapless event space."""

    kind: Literal["alarm"] = "alarm"
    site_id: Ident
    equipment_id: Ident
    point: Ident
    alarm_type: Ident
    transition: Transition
    severity: Severity
    value: AlarmValue = None
    reason: str = Field(default="", max_length=500)
    # Raised during an inspection: a test result, not an incident.
    test: Flag = False


class StateEvent(_Envelope):
    """A state change of the agent itself (events channel): outbox recovered, telemetry thinned."""

    kind: Literal["state"] = "state"
    site_id: Ident
    name: Ident
    detail: dict[str, Any] = Field(default_factory=dict)

    @field_validator("detail")
    @classmethod
    def _bounded_detail(cls, detail: dict[str, Any]) -> dict[str, Any]:
        bounded_json(detail, max_depth=MAX_DETAIL_DEPTH, max_bytes=MAX_DETAIL_BYTES)
        return detail


class TelemetrySample(_Model):
    """One measured value."""

    equipment_id: Ident
    point: Ident
    value: Finite
    unit: str | None = Field(default=None, max_length=16)
    ts: Timestamp


class TelemetryMessage(_Envelope):
    """A batch of samples (telemetry channel); ``seq`` is in the telemetry space, gaps allowed."""

    kind: Literal["telemetry"] = "telemetry"
    site_id: Ident
    samples: list[TelemetrySample] = Field(min_length=1, max_length=2000)


class AlarmSnapshot(_Model):
    """One currently active alarm, as listed in a birth message."""

    equipment_id: Ident
    point: Ident
    alarm_type: Ident
    severity: Severity
    value: AlarmValue = None
    since: Timestamp


class BirthMessage(_Envelope):
    """Retained on the status channel at every connect. ``seq`` = highest event seq assigned."""

    kind: Literal["birth"] = "birth"
    site_id: Ident
    boot: Boot
    agent_version: str = Field(max_length=64)
    config_hash: str = Field(max_length=128)
    # Full snapshot: every alarm identity not listed is clear at the edge.
    alarms: list[AlarmSnapshot] = Field(default_factory=list, max_length=MAX_SNAPSHOT_ALARMS)


class WillMessage(_Envelope):
    """Last Will, registered at connect with the same (stream id, boot) as the birth."""

    kind: Literal["will"] = "will"
    site_id: Ident
    boot: Boot


class DeviceHealth(_Model):
    """Poll health of one device."""

    device_id: Ident
    ok: Flag
    last_ok: Timestamp | None = None
    consecutive_failures: Count = 0
    last_error: str | None = Field(default=None, max_length=500)
    # Since the agent started; optional so heartbeats of older agents stay valid.
    polls_ok: Count = 0
    polls_failed: Count = 0
    # The profile's points the device did not serve at its last answer (unknown values);
    # optional, absent from older agents.
    points_unknown: list[Ident] = Field(default_factory=list, max_length=500)


class ListenerHealth(_Model):
    """One listening socket of the agent (SNMP traps, syslog), counted since the agent started:
    every datagram ``received`` is ``accepted`` (traps: mapped to an alarm of a device;
    syslog: a parsed line) or rejected, counted by reason."""

    kind: Literal["snmp_traps", "syslog"]
    bind: str = Field(max_length=64)
    port: Annotated[int, Field(ge=0, le=65535)]
    received: Count = 0
    accepted: Count = 0
    rejected: dict[Annotated[str, Field(max_length=120)], Count] = Field(
        default_factory=dict, max_length=32
    )


class OutboxHealth(_Model):
    """State of the agent's durable outbox, and of the storage under it."""

    # Unacknowledged events, those kept in memory (``volatile_pending``) included.
    events_pending: Count
    telemetry_pending: Count
    oldest_unacked_age_s: Annotated[Finite, Field(ge=0)] | None = None
    thinned_total: Count = 0
    size_bytes: Count = 0
    critical: Flag = False
    recovered: Flag = False
    # Optional, so heartbeats of older agents stay valid (absent: not reported).
    # The last successful write to the outbox's file, and the free space of its file system.
    last_write: Timestamp | None = None
    free_bytes: Count | None = None
    # Why writes fail right now (None: they work), and failed writes since the agent started.
    storage_error: str | None = Field(default=None, max_length=500)
    storage_errors: Count = 0
    # Events on the volatile stream not yet acknowledged, and events lost since the agent
    # started because the in-memory queue was full as well.
    volatile_pending: Count = 0
    volatile_lost: Count = 0


class HeartbeatMessage(_Envelope):
    """Periodic liveness and health (heartbeat channel). ``seq`` = highest event seq assigned."""

    kind: Literal["heartbeat"] = "heartbeat"
    site_id: Ident
    boot: Boot
    config_hash: str = Field(max_length=128)
    outbox: OutboxHealth
    devices: list[DeviceHealth] = Field(default_factory=list, max_length=500)
    traps_rejected: Count = 0
    # Each listener's address and counts (optional: older agents omit it).
    listeners: list[ListenerHealth] = Field(default_factory=list, max_length=8)
    # Why the last configuration offered (file, SIGHUP, collector push) was refused, the agent
    # running its previous one; None once one is applied. Optional: older agents omit it.
    config_error: str | None = Field(default=None, max_length=2000)
    # Acks the agent refused since it started (bad or missing signature, another stream, seqs
    # it never published): a forger at work, or a collector with the wrong secret.
    acks_rejected: Count = 0


AgentMessage = Annotated[
    AlarmEvent | StateEvent | TelemetryMessage | BirthMessage | WillMessage | HeartbeatMessage,
    Field(discriminator="kind"),
]


class SeqRange(_Model):
    """An inclusive range of sequence numbers."""

    first: Seq
    last: Seq

    @model_validator(mode="after")
    def _ordered(self) -> SeqRange:
        if self.last < self.first:
            raise ValueError(f"range last {self.last} < first {self.first}")
        return self


class AckMessage(_Model):
    """Collector -> agent, published only after the SQL commit of what it acknowledges."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["ack"] = "ack"
    agent_id: AgentId
    stream_id: StreamId
    # Highest event seq such that every event 1..events_through is committed.
    events_through: Seq
    telemetry: list[SeqRange] = Field(default_factory=list, max_length=1000)
    collector_id: str = Field(max_length=128)
    ts: Timestamp
    # HMAC-SHA256 with the agent's ack key over the fields above (protocol/acksig.py); absent
    # when the collector has no ack secret.
    sig: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class CollectorStatus(_Model):
    """Retained per collector instance; its Last Will says ``online: false``."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["collector_status"] = "collector_status"
    collector_id: str = Field(max_length=128)
    online: bool
    ts: Timestamp | None = None


class ConfigMessage(_Model):
    """Collector -> agent, retained: a complete site configuration to validate and apply."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["config"] = "config"
    agent_id: AgentId
    config_hash: str = Field(max_length=128)
    site_yaml: str = Field(max_length=200_000)
    profiles_yaml: dict[str, str] = Field(default_factory=dict)


class CommandMessage(_Model):
    """Collector -> agent command."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["cmd"] = "cmd"
    agent_id: AgentId
    cmd_id: str = Field(max_length=64)
    command: Literal["resend", "reload", "inspection_start", "inspection_stop"]
    args: dict[str, Any] = Field(default_factory=dict)


class AlarmState(StrEnum):
    """Collector-side alarm state."""

    ACTIVE = "active"
    CLEARED = "cleared"
    UNKNOWN = "unknown"  # the agent is unreachable: never silently cleared
