"""An agent started on a corrupt outbox starts anyway, on a new stream, and says so loudly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from agent.runtime import AgentRuntime
from clocks import ManualClock

DEMO_SITE = (
    Path(__file__).resolve().parents[3] / "firmware_config" / "sites" / "demo" / "pm-lyon-0101.yaml"
)


@pytest.mark.parametrize("damage", [b"\x00garbage" * 500, b"SQLite format 3\x00" + b"\x01" * 100])
def test_corrupt_outbox_new_stream_state_event_and_agent_alarm(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    raw = yaml.safe_load(DEMO_SITE.read_text())
    raw["outbox"]["path"] = str(tmp_path / "outbox.db")
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(raw))
    (tmp_path / "outbox.db").write_bytes(damage)
    with caplog.at_level(logging.ERROR):
        runtime = AgentRuntime(config_path=site, clock=clock, clock_synced=lambda: True)
        runtime._report_recovery()
    assert runtime.outbox.recovered
    assert "OUTBOX RECOVERED" in caplog.text
    items = runtime.outbox.next_batch(limit=10, exclude=set())
    kinds = [json.loads(i.payload)["kind"] for i in items]
    names = [
        json.loads(i.payload).get("name") or json.loads(i.payload).get("alarm_type") for i in items
    ]
    assert kinds == ["state", "alarm"] and names == ["outbox_recovered", "outbox_recovered"]
    assert runtime.outbox.health().recovered
    assert list(tmp_path.glob("outbox.db.corrupt-*"))
    runtime.outbox.close()
