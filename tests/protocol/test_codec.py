"""What the collector says about a payload it refuses: the reason code and where it is wrong."""

from __future__ import annotations

import json

import pytest

from protocol import DecodeError, decode

TOPIC = "sw/v1/agents/a1/events"


def _alarm(**changes: object) -> bytes:
    body = {
        "v": 1,
        "kind": "alarm",
        "agent_id": "a1",
        "stream_id": "a" * 32,
        "seq": 1,
        "ts": "2026-01-05T09:00:00+01:00",
        "clock_synced": True,
        "site_id": "PM-1",
        "equipment_id": "door-main",
        "point": "contact",
        "alarm_type": "door_open",
        "transition": "raised",
        "severity": "major",
    }
    return json.dumps({**body, **changes}).encode()


def test_a_valid_alarm_decodes_with_its_offset_kept_as_utc_time() -> None:
    _, message = decode(TOPIC, _alarm())
    assert message.ts.isoformat() == "2026-01-05T09:00:00+01:00"


@pytest.mark.parametrize("ts", [1767600000, 1767600000.5])
def test_a_number_for_a_timestamp_is_refused_in_words(ts: float) -> None:
    # pydantic alone would take it for seconds since 1970.
    with pytest.raises(DecodeError) as refused:
        decode(TOPIC, _alarm(ts=ts))
    assert refused.value.reason == "invalid"
    assert "ts: timestamps are RFC 3339 strings with an offset, not numbers" in refused.value.detail


def test_a_timestamp_without_an_offset_is_refused() -> None:
    with pytest.raises(DecodeError) as refused:
        decode(TOPIC, _alarm(ts="2026-01-05T09:00:00"))
    assert refused.value.reason == "invalid"
    assert "ts" in refused.value.detail and "timezone" in refused.value.detail
