"""Every example in docs/protocol.md parses with the shared models, on the topic it names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from protocol import (
    AckMessage,
    CollectorStatus,
    CommandMessage,
    ConfigMessage,
    decode,
    encode,
)
from protocol.topics import Channel, parse_topic

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE_RE = re.compile(r"```json example topic=(\S+)\n(.*?)```", re.S)
EXAMPLES = EXAMPLE_RE.findall(DOC.read_text())

COLLECTOR_PUBLISHED = {
    Channel.ACK: AckMessage,
    Channel.CONFIG: ConfigMessage,
    Channel.CMD: CommandMessage,
}


def test_doc_has_an_example_of_every_kind() -> None:
    kinds = {json.loads(body)["kind"] for _, body in EXAMPLES}
    assert kinds == {
        "alarm",
        "state",
        "telemetry",
        "birth",
        "will",
        "heartbeat",
        "ack",
        "config",
        "cmd",
        "collector_status",
    }


@pytest.mark.parametrize(("topic", "body"), EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_example_parses_and_round_trips(topic: str, body: str) -> None:
    raw = json.loads(body)
    # As JSON, the way every receiver reads them (timestamps are strict: RFC 3339 text).
    if topic.startswith("sw/v1/collectors/"):
        model = CollectorStatus.model_validate_json(body)
    else:
        channel = parse_topic(topic).channel
        if channel in COLLECTOR_PUBLISHED:
            model = TypeAdapter(COLLECTOR_PUBLISHED[channel]).validate_json(body)
        else:
            _, model = decode(topic, body.encode())
    # The models ignore unknown fields, so a typo in the doc would pass silently: forbid it here.
    assert set(raw) <= set(type(model).model_fields), set(raw) - set(type(model).model_fields)
    assert type(model).model_validate_json(encode(model)) == model
