"""Ack signatures: the collector signs each ack with the agent's key, the agent checks it.

A forged ack makes an agent delete events the collector never stored, so an agent with a key
honours only acks signed with it (docs/protocol.md, "Ack signature"). Keys:

- the collectors hold one **master secret** (32 random bytes, a file of 64 hex digits, shared
  by every instance);
- an agent's key is ``HMAC-SHA256(master, "shelterwatch-ack-v1:" + agent_id)``: no key table
  for a national fleet, and any instance can sign for any agent;
- the signature is ``HMAC-SHA256(agent key, canonical bytes)``, 64 hex digits in ``sig``,
  where the canonical bytes are the compact JSON array
  ``["shelterwatch-ack-v1", agent_id, stream_id, events_through, [[first, last], ...],
  collector_id, ts]`` with ``ts`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Both sides build
  it from parsed values, so the JSON spelling of the ack itself does not matter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from protocol.messages import AckMessage

ACK_SIG_VERSION = "shelterwatch-ack-v1"
_KEY_CONTEXT = f"{ACK_SIG_VERSION}:".encode()
KEY_BYTES = 32
_HEX_DIGITS = 2 * KEY_BYTES


def new_secret() -> str:
    """A new master secret (or any key) as the 64 hex digits its file holds."""
    return secrets.token_hex(KEY_BYTES)


def derive_ack_key(master: bytes, agent_id: str) -> bytes:
    """The agent's ack key: ``HMAC-SHA256(master, "shelterwatch-ack-v1:" + agent_id)``."""
    return hmac.new(master, _KEY_CONTEXT + agent_id.encode(), hashlib.sha256).digest()


def ack_signing_bytes(
    *,
    agent_id: str,
    stream_id: str,
    events_through: int,
    telemetry: Sequence[tuple[int, int]],
    collector_id: str,
    ts: datetime,
) -> bytes:
    """The canonical bytes an ack signature covers."""
    when = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = [
        ACK_SIG_VERSION,
        agent_id,
        stream_id,
        events_through,
        [[first, last] for first, last in telemetry],
        collector_id,
        when,
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()


def sign_ack(
    key: bytes,
    *,
    agent_id: str,
    stream_id: str,
    events_through: int,
    telemetry: Sequence[tuple[int, int]],
    collector_id: str,
    ts: datetime,
) -> str:
    """The ``sig`` of an ack with these fields, as 64 hex digits."""
    canonical = ack_signing_bytes(
        agent_id=agent_id,
        stream_id=stream_id,
        events_through=events_through,
        telemetry=telemetry,
        collector_id=collector_id,
        ts=ts,
    )
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def ack_signature_valid(key: bytes, ack: AckMessage) -> bool:
    """True when ``ack.sig`` is the signature of its fields under ``key`` (constant time)."""
    if ack.sig is None:
        return False
    expected = sign_ack(
        key,
        agent_id=ack.agent_id,
        stream_id=ack.stream_id,
        events_through=ack.events_through,
        telemetry=[(r.first, r.last) for r in ack.telemetry],
        collector_id=ack.collector_id,
        ts=ack.ts,
    )
    return hmac.compare_digest(expected, ack.sig)


def parse_key(text: str) -> bytes:
    """A key or master secret from its file's text (64 hex digits); ``ValueError`` otherwise."""
    digits = text.strip()
    if len(digits) != _HEX_DIGITS or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"expected {_HEX_DIGITS} hex digits ({KEY_BYTES} bytes)")
    return bytes.fromhex(digits)


def read_key_file(path: Path) -> bytes:
    """Read a key or master secret file; ``ValueError`` saying what is wrong with it."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from err
    try:
        return parse_key(text)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
