"""The outbox keeps every alarm until acked, in a gapless sequence, and recovers from corruption."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from agent.buffer import Outbox, next_boot
from agent.events import AlarmTransition, Sample
from clocks import ManualClock
from protocol import AckMessage, SeqRange, Severity, Transition, decode
from siteconfig import OutboxSettings


def _settings(tmp_path: Path, **kw: float) -> OutboxSettings:
    return OutboxSettings(path=tmp_path / "outbox.db", **kw)  # type: ignore[arg-type]


def _open(tmp_path: Path, clock: ManualClock, **kw: float) -> Outbox:
    return Outbox.open(settings=_settings(tmp_path, **kw), agent_id="a1", site_id="S1", clock=clock)


def _alarm(
    clock: ManualClock, n: int = 0, transition: Transition = Transition.RAISED
) -> AlarmTransition:
    return AlarmTransition(
        equipment_id="door-main",
        point=f"contact{n}",
        alarm_type="door_open",
        transition=transition,
        severity=Severity.MAJOR,
        value=True,
        reason="door opened",
        ts=clock.now(),
    )


def _ack(outbox: Outbox, through: int, telemetry: list[SeqRange] | None = None) -> AckMessage:
    return AckMessage(
        agent_id="a1",
        stream_id=outbox.stream_id,
        events_through=through,
        telemetry=telemetry or [],
        collector_id="c1",
        ts=outbox._clock.now(),
    )


def test_events_get_gapless_sequence_and_valid_payloads(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock)
    first = outbox.append_alarm(_alarm(clock), clock_synced=True)
    state = outbox.append_state(name="config_applied", detail={"h": "x"}, clock_synced=True)
    second = outbox.append_alarm(_alarm(clock, transition=Transition.CLEARED), clock_synced=False)
    assert [first.seq, state.seq, second.seq] == [1, 2, 3]
    items = outbox.next_batch(limit=10, exclude=set())
    assert [i.seq for i in items] == [1, 2, 3]
    for item in items:
        _, message = decode(f"sw/v1/agents/a1/{item.channel.value}", item.payload)
        assert message.stream_id == outbox.stream_id


def test_sequence_and_stream_survive_reopen(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock)
    outbox.append_alarm(_alarm(clock), clock_synced=True)
    stream = outbox.stream_id
    outbox.close()
    again = _open(tmp_path, clock)
    assert again.stream_id == stream
    assert again.append_alarm(_alarm(clock, 1), clock_synced=True).seq == 2
    assert not again.recovered


def test_alarm_commit_is_fsynced(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock)
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert outbox._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_nothing_is_deleted_before_the_collector_ack(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock)
    for n in range(5):
        outbox.append_alarm(_alarm(clock, n), clock_synced=True)
    assert outbox.ack(_ack(outbox, 3)) == 3
    assert [i.seq for i in outbox.next_batch(limit=10, exclude=set())] == [4, 5]
    other = _ack(outbox, 5).model_copy(update={"stream_id": "f" * 32})
    assert outbox.ack(other) == 0
    assert outbox.health().events_pending == 2


def test_telemetry_is_group_committed_and_acked_by_range(
    tmp_path: Path, clock: ManualClock
) -> None:
    outbox = _open(tmp_path, clock)
    sample = Sample(
        equipment_id="env-1", point="temperature", value=21.5, unit="degC", ts=clock.now()
    )
    outbox.append_samples([sample], clock_synced=True)
    outbox.append_samples([sample], clock_synced=True)
    # Not committed yet: still within the group-commit interval.
    assert outbox._db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0] == 0
    clock.advance(seconds=1)
    outbox.append_samples([sample], clock_synced=True)
    assert outbox._db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0] == 3
    assert outbox.ack(_ack(outbox, 0, [SeqRange(first=1, last=2)])) == 2
    assert [i.seq for i in outbox.next_batch(limit=10, exclude=set())] == [3]


def test_each_record_carries_the_clock_offset_measured_when_it_was_recorded(
    tmp_path: Path, clock: ManualClock
) -> None:
    # The wall clock may step between recording and publishing (a week offline): what corrects
    # a record's times is the offset of its own moment, never the one at publish time.
    offsets: list[float | None] = [None]
    outbox = Outbox.open(
        settings=_settings(tmp_path),
        agent_id="a1",
        site_id="S1",
        clock=clock,
        clock_offset=lambda: offsets[-1],
    )
    sample = Sample(
        equipment_id="env-1", point="temperature", value=21.5, unit="degC", ts=clock.now()
    )
    outbox.append_alarm(_alarm(clock, 1), clock_synced=True)
    offsets.append(-3600.0)
    outbox.append_samples([sample], clock_synced=True)
    outbox.append_state(name="config_applied", detail={}, clock_synced=True)
    offsets.append(0.25)
    outbox.append_alarm(_alarm(clock, 2), clock_synced=False)
    outbox.flush()
    carried = {
        (i.space, i.seq): json.loads(i.payload)["clock_offset_s"]
        for i in outbox.next_batch(limit=10, exclude=set())
    }
    assert carried == {
        ("event", 1): None,
        ("event", 2): -3600.0,
        ("event", 3): 0.25,
        ("telemetry", 1): -3600.0,
    }


def test_events_go_first_and_live_telemetry_rides_along(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock)
    sample = Sample(equipment_id="env-1", point="t", value=1.0, unit=None, ts=clock.now())
    for _ in range(30):
        outbox.append_samples([sample], clock_synced=True)
    outbox.flush()
    for n in range(20):
        outbox.append_alarm(_alarm(clock, n), clock_synced=True)
    batch = outbox.next_batch(limit=22, exclude=set())
    events = [i for i in batch if i.space == "event"]
    telemetry = [i for i in batch if i.space == "telemetry"]
    assert [i.seq for i in events] == list(range(1, 21))
    assert telemetry[0].seq == 30  # the newest value first
    excluded = {i.key for i in batch}
    assert all(i.key not in excluded for i in outbox.next_batch(limit=50, exclude=excluded))


def test_full_outbox_thins_telemetry_oldest_first_and_reports_it(
    tmp_path: Path, clock: ManualClock
) -> None:
    outbox = _open(tmp_path, clock, max_mib=1.0, alarm_reserve=1000)
    sample = Sample(equipment_id="env-1", point="t", value=1.0, unit=None, ts=clock.now())
    for _ in range(5000):
        outbox.append_samples([sample] * 5, clock_synced=True)
        outbox.flush()
    health = outbox.health()
    assert health.thinned_total > 0
    assert health.size_bytes <= 1024 * 1024
    remaining = [r[0] for r in outbox._db.execute("SELECT seq FROM telemetry ORDER BY seq")]
    assert remaining[-1] == 5000  # newest kept
    assert remaining == list(range(remaining[0], 5001))  # oldest went first
    thinning = [
        json.loads(r[0])
        for r in outbox._db.execute("SELECT payload FROM events WHERE kind = 'state'")
    ]
    assert sum(t["detail"]["count"] for t in thinning) == health.thinned_total


def test_alarms_are_never_dropped_even_past_the_reserve(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock, max_mib=0.2, alarm_reserve=1000)
    sample = Sample(equipment_id="env-1", point="t", value=1.0, unit=None, ts=clock.now())
    outbox.append_samples([sample], clock_synced=True)
    outbox.flush()
    n = 800  # more alarm bytes than the whole outbox size
    for i in range(n):
        outbox.append_alarm(_alarm(clock, i), clock_synced=True)
    health = outbox.health()
    assert health.events_pending >= n
    assert health.telemetry_pending == 0
    assert health.critical
    seqs = [i.seq for i in outbox.next_batch(limit=5000, exclude=set()) if i.space == "event"]
    assert seqs == list(range(1, len(seqs) + 1))


def test_active_alarm_state_is_persisted_with_the_transition(
    tmp_path: Path, clock: ManualClock
) -> None:
    outbox = _open(tmp_path, clock)
    outbox.append_alarm(_alarm(clock, 1), clock_synced=True)
    outbox.append_alarm(_alarm(clock, 2), clock_synced=True)
    outbox.append_alarm(_alarm(clock, 1, Transition.CLEARED), clock_synced=True)
    outbox.close()
    active = _open(tmp_path, clock).active_alarms()
    assert [(a.point, a.alarm_type) for a in active] == [("contact2", "door_open")]


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_outbox_is_moved_aside_and_a_new_stream_starts(
    tmp_path: Path, clock: ManualClock, damage: str
) -> None:
    outbox = _open(tmp_path, clock)
    for n in range(200):
        outbox.append_alarm(_alarm(clock, n), clock_synced=True)
    old_stream = outbox.stream_id
    outbox.close()
    db = tmp_path / "outbox.db"
    if damage == "truncate":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    else:
        db.write_bytes(b"\x00garbage" * 1000)
    recovered = _open(tmp_path, clock)
    assert recovered.recovered and recovered.recovery_reason
    assert recovered.stream_id != old_stream
    assert recovered.append_alarm(_alarm(clock), clock_synced=True).seq == 1
    assert list(tmp_path.glob("outbox.db.corrupt-*"))
    assert recovered.health().recovered


def test_alarms_reported_committed_survive_kill_9(tmp_path: Path) -> None:
    """A writer killed mid-stream loses nothing it had reported as committed."""
    script = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime
        from pathlib import Path
        from agent.buffer import Outbox
        from siteconfig import OutboxSettings
        from agent.events import AlarmTransition
        from clocks import SystemClock
        from protocol import Severity, Transition
        ob = Outbox.open(settings=OutboxSettings(path=Path({str(tmp_path / "k.db")!r})),
                         agent_id="a1", site_id="S1", clock=SystemClock())
        i = 0
        while True:
            i += 1
            ev = ob.append_alarm(AlarmTransition("e", f"p{{i}}", "door_open", Transition.RAISED,
                 Severity.MAJOR, True, "", datetime.now(UTC)), clock_synced=True)
            print(ev.seq, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    reported = 0
    for line in proc.stdout:
        reported = int(line)
        if reported >= 300:
            break
    proc.kill()
    proc.wait()
    proc.stdout.close()
    conn = sqlite3.connect(tmp_path / "k.db")
    seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    conn.close()
    assert seqs[:reported] == list(range(1, reported + 1))


def test_oldest_unacked_age(tmp_path: Path, clock: ManualClock) -> None:
    outbox = _open(tmp_path, clock)
    outbox.append_alarm(_alarm(clock), clock_synced=True)
    clock.advance(seconds=90)
    assert outbox.health().oldest_unacked_age_s == pytest.approx(
        timedelta(seconds=90).total_seconds()
    )


def test_boot_counter_increments_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "boot"
    assert [next_boot(path), next_boot(path), next_boot(path)] == [1, 2, 3]
    path.write_text("garbage")
    assert next_boot(path) == 1
