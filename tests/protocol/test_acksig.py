"""Ack signatures: the worked example of docs/protocol.md, and what a signature binds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocol import AckMessage, SeqRange
from protocol.acksig import (
    ack_signature_valid,
    ack_signing_bytes,
    derive_ack_key,
    parse_key,
    sign_ack,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
SIGNED_EXAMPLE = re.search(r"```json example topic=\S+/ack\n(.*?)```", DOC, re.S)
MASTER = re.search(r"signed with the master secret\s+`([0-9a-f]{64})`", DOC)
AGENT_KEY = re.search(r"the key `([0-9a-f]{64})`", DOC)
CANONICAL = re.search(r"its canonical bytes are\s+`(\[.*?\])`", DOC, re.S)


def _doc_ack() -> AckMessage:
    assert SIGNED_EXAMPLE is not None
    return AckMessage.model_validate_json(SIGNED_EXAMPLE.group(1))


def test_the_documented_example_verifies_with_the_documented_keys() -> None:
    assert MASTER is not None and AGENT_KEY is not None and CANONICAL is not None
    ack = _doc_ack()
    key = derive_ack_key(bytes.fromhex(MASTER.group(1)), ack.agent_id)
    assert key.hex() == AGENT_KEY.group(1)
    canonical = ack_signing_bytes(
        agent_id=ack.agent_id,
        stream_id=ack.stream_id,
        events_through=ack.events_through,
        telemetry=[(r.first, r.last) for r in ack.telemetry],
        collector_id=ack.collector_id,
        ts=ack.ts,
    )
    assert canonical.decode() == CANONICAL.group(1)
    assert ack_signature_valid(key, ack)


@pytest.mark.parametrize(
    "change",
    [
        {"agent_id": "nro-lyon-02"},
        {"stream_id": "0" * 32},
        {"events_through": 44},
        {"telemetry": [SeqRange(first=9001, last=9004)]},
        {"telemetry": []},
        {"collector_id": "c2"},
        {"ts": datetime(2026, 11, 24, 7, 12, 5, 100001, tzinfo=UTC)},
        {"sig": None},
    ],
    ids=lambda c: next(iter(c)),
)
def test_changing_any_signed_field_breaks_the_signature(change: dict[str, object]) -> None:
    assert MASTER is not None
    ack = _doc_ack()
    key = derive_ack_key(bytes.fromhex(MASTER.group(1)), ack.agent_id)
    assert not ack_signature_valid(key, ack.model_copy(update=change))


def test_another_agents_key_does_not_verify() -> None:
    assert MASTER is not None
    ack = _doc_ack()
    other = derive_ack_key(bytes.fromhex(MASTER.group(1)), "nro-lyon-02")
    assert not ack_signature_valid(other, ack)


def test_the_timestamp_is_signed_as_an_instant_whatever_its_offset() -> None:
    key = bytes(32)
    sig = sign_ack(
        key,
        agent_id="a1",
        stream_id="a" * 32,
        events_through=1,
        telemetry=[(1, 2)],
        collector_id="c1",
        ts=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )
    paris = AckMessage.model_validate_json(
        '{"agent_id": "a1", "stream_id": "' + "a" * 32 + '", "events_through": 1,'
        ' "telemetry": [{"first": 1, "last": 2}], "collector_id": "c1",'
        ' "ts": "2026-01-05T10:00:00+01:00", "sig": "' + sig + '"}'
    )
    assert ack_signature_valid(key, paris)


@pytest.mark.parametrize("text", ["", "abc", "zz" * 32, "00" * 31, "00" * 33])
def test_a_key_file_must_hold_64_hex_digits(text: str) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        parse_key(text)
    assert parse_key("AB" * 32 + "\n") == b"\xab" * 32
