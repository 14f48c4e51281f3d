"""Encoding and validating payloads; every rejection says why, for the dead-letter table."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from protocol.messages import SCHEMA_VERSION, AgentMessage
from protocol.topics import Channel, Topic, parse_topic

MAX_PAYLOAD_BYTES = 256 * 1024
# No message of the contract nests deeper than this (a telemetry sample is at depth 3, a
# state event's detail at most 1 + its own limit); a deeper payload is refused before parsing.
MAX_JSON_DEPTH = 16

_AGENT_MESSAGE: TypeAdapter[AgentMessage] = TypeAdapter(AgentMessage)

# Which message kinds may travel on which agent channel.
_KINDS_BY_CHANNEL: dict[Channel, frozenset[str]] = {
    Channel.EVENTS: frozenset({"alarm", "state"}),
    Channel.TELEMETRY: frozenset({"telemetry"}),
    Channel.STATUS: frozenset({"birth", "will"}),
    Channel.HEARTBEAT: frozenset({"heartbeat"}),
}


class DecodeError(ValueError):
    """A payload the collector cannot accept; ``reason`` is a stable code for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(message: BaseModel) -> bytes:
    """Serialise a message as compact UTF-8 JSON."""
    return message.model_dump_json().encode()


def decode(topic: str, payload: bytes) -> tuple[Topic, AgentMessage]:
    """Validate an agent -> collector message against its topic; raise ``DecodeError``.

    Whatever the bytes hold, nothing but ``DecodeError`` comes out: one message may only ever
    cost itself (the batch it came in with is not affected).
    """
    try:
        return _decode(topic, payload)
    except DecodeError:
        raise
    except Exception as err:  # a case the checks below did not foresee: still this message's
        raise DecodeError("invalid", f"{type(err).__name__}: {str(err)[:200]}") from err


def _decode(topic: str, payload: bytes) -> tuple[Topic, AgentMessage]:
    try:
        parsed = parse_topic(topic)
    except ValueError as err:
        raise DecodeError("bad_topic", str(err)) from err
    if parsed.channel not in _KINDS_BY_CHANNEL:
        raise DecodeError("bad_topic", f"{parsed.channel.value} is not an agent-published channel")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    # Valid messages, nearly all of them, are parsed and validated in one pass by pydantic's
    # own JSON parser (twice as fast as json.loads and then validation). Anything it refuses
    # goes the long way below, which says precisely why.
    message: AgentMessage | None = None
    refused: ValidationError | None = None
    # Its parser has a nesting limit of its own, and the models bound every field's depth.
    try:
        message = _AGENT_MESSAGE.validate_json(payload)
    except ValidationError as err:
        refused = err
    else:
        # The version must be written, not defaulted: the long way checks the raw object.
        if "v" in message.model_fields_set and message.kind in _KINDS_BY_CHANNEL[parsed.channel]:
            return parsed, _same_agent(parsed, message)
    depth = json_depth(payload)
    if depth > MAX_JSON_DEPTH:
        raise DecodeError("too_deep", f"JSON nested {depth} deep, at most {MAX_JSON_DEPTH}")
    raw = _json_object(payload)
    version = raw.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DecodeError(
            "unknown_version", f"schema version {_brief(version)}, expected {SCHEMA_VERSION}"
        )
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS_BY_CHANNEL[parsed.channel]:
        raise DecodeError(
            "wrong_channel", f"kind {_brief(kind)} is not allowed on {parsed.channel.value}"
        )
    if refused is not None:
        raise DecodeError("invalid", _summarise(refused)) from refused
    assert message is not None  # valid, and its version and kind were fine after all
    return parsed, _same_agent(parsed, message)


# JSON strings (escapes included), and the brackets left once they are taken out.
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(payload: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, without parsing it (so a depth
    bomb costs one scan, not a recursion). Only refused payloads come this way."""
    brackets = _STRINGS.sub(b"", payload).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _brief(value: Any) -> str:
    """A value named in a reason, cut short (it came from an untrusted payload)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _same_agent(parsed: Topic, message: AgentMessage) -> AgentMessage:
    if message.agent_id != parsed.agent_id:
        raise DecodeError(
            "identity_mismatch",
            f"topic says agent {parsed.agent_id!r}, payload says {message.agent_id!r}",
        )
    return message


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as err:
        raise DecodeError("not_json", str(err)[:200]) from err
    if not isinstance(raw, dict):
        raise DecodeError("not_object", f"payload is a JSON {type(raw).__name__}, not an object")
    return raw


def _summarise(err: ValidationError) -> str:
    parts = []
    for item in err.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        message = item["msg"]
        if item["type"] == "datetime_type" and isinstance(item.get("input"), int | float):
            message = "timestamps are RFC 3339 strings with an offset, not numbers"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
