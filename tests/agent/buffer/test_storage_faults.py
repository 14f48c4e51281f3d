"""A full data file system never stops alarm recording: alarms go to the volatile stream (kept
in memory, sent directly), a storage_fault alarm says so, nothing is lost until the documented
queue is full (then counted), and durable recording resumes by itself once space is back.

Real faults only: the outbox lives on a size-limited tmpfs that a file fills (root needed)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.buffer import Outbox, OutboxItem, StorageError
from agent.buffer.errors import storage_error
from agent.buffer.outbox import PROBE_FAULTED_S
from agent.events import AlarmTransition, Sample
from clocks import ManualClock
from protocol import AckMessage, SeqRange, Severity, Transition
from simulators.storage import TmpfsVolume
from siteconfig import OutboxSettings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[TmpfsVolume]:
    with TmpfsVolume(tmp_path / "data", size_mib=8) as vol:
        yield vol


def _open(volume: TmpfsVolume, clock: ManualClock, **kw: Any) -> Outbox:
    settings = OutboxSettings(path=volume.mountpoint / "outbox.db", **{"min_free_mib": 0, **kw})
    return Outbox.open(
        settings=settings, agent_id="a1", site_id="S1", clock=clock, clock_synced=lambda: True
    )


def _door(clock: ManualClock, n: int, transition: Transition) -> AlarmTransition:
    return AlarmTransition(
        equipment_id="door-main",
        point=f"door{n}",
        alarm_type="door_open",
        transition=transition,
        severity=Severity.MAJOR,
        value=transition is Transition.RAISED,
        reason="door",
        ts=clock.now(),
    )


def _ack(outbox: Outbox, stream_id: str, through: int, **kw: Any) -> AckMessage:
    return AckMessage(
        agent_id="a1",
        stream_id=stream_id,
        events_through=through,
        collector_id="c1",
        ts=outbox._clock.now(),
        **kw,
    )


def _bodies(items: list[OutboxItem]) -> list[dict[str, Any]]:
    return [json.loads(i.payload) for i in items]


def _recover(outbox: Outbox, volume: TmpfsVolume, clock: ManualClock) -> Any:
    volume.free()
    clock.advance(seconds=PROBE_FAULTED_S)
    return outbox.check()


def test_full_disk_alarms_go_out_from_memory_and_recording_resumes(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock)
    assert outbox.append_alarm(_door(clock, 1, Transition.RAISED), clock_synced=True)
    outbox.ack(_ack(outbox, outbox.stream_id, 1))
    volume.fill()
    kept = outbox.append_alarm(_door(clock, 1, Transition.CLEARED), clock_synced=True)

    assert kept is not None and kept.stream_id == outbox.volatile_stream_id != outbox.stream_id
    items = outbox.next_batch(limit=10, exclude=set())
    bodies = _bodies(items)
    # The storage_fault alarm first (kept the moment the write failed), then the door.
    assert [(b["alarm_type"], b["transition"], b["seq"]) for b in bodies] == [
        ("storage_fault", "raised", 1),
        ("door_open", "cleared", 2),
    ]
    assert {i.space for i in items} == {"volatile"}
    assert bodies[0]["value"] == "full" and "data filesystem full" in bodies[0]["reason"]
    health = outbox.health()
    assert health.storage_error and "full" in health.storage_error
    assert (health.volatile_pending, health.events_pending, health.volatile_lost) == (2, 2, 0)
    assert health.free_bytes is not None and health.free_bytes < 4096

    recovery = _recover(outbox, volume, clock)
    assert recovery is not None and (recovery.kept, recovery.lost) == (2, 0)
    assert outbox.storage_fault is None and outbox.health().storage_error is None
    after = outbox.append_alarm(_door(clock, 2, Transition.RAISED), clock_synced=True)
    assert after is not None and after.stream_id == outbox.stream_id
    # Durable events stored after the volatile ones wait until those are acknowledged.
    assert _bodies(outbox.next_batch(limit=10, exclude={("volatile", 1), ("volatile", 2)})) == []
    outbox.ack(_ack(outbox, outbox.volatile_stream_id, 2))
    durable = _bodies(outbox.next_batch(limit=10, exclude=set()))
    assert [b.get("name") or (b["alarm_type"], b["transition"]) for b in durable] == [
        "storage_recovered",
        ("storage_fault", "cleared"),
        ("door_open", "raised"),
    ]
    assert durable[0]["detail"]["kept_in_memory"] == 2 and durable[0]["detail"]["lost"] == 0
    assert [b["seq"] for b in durable] == [2, 3, 4]  # the durable sequence stays gapless
    # The door's state was written to the outbox's table on recovery: a restart's birth has it.
    outbox.close()
    again = _open(volume, clock)
    assert [a.point for a in again.active_alarms()] == ["door2"]


def test_a_full_queue_loses_and_counts_and_the_stream_stays_gapless(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock, volatile_max=10)
    volume.fill()
    results = [
        outbox.append_alarm(_door(clock, n, Transition.RAISED), clock_synced=True)
        for n in range(15)
    ]
    assert sum(r is None for r in results) == 5
    items = outbox.next_batch(limit=50, exclude=set())
    # The storage_fault alarm has a place of its own: 1 + 10 kept, seqs 1..11.
    assert [i.seq for i in items] == list(range(1, 12))
    assert outbox.health().volatile_lost == 5
    # What was lost still counts for the state a birth reports: all 15 doors are open.
    assert len([a for a in outbox.active_alarms() if a.alarm_type == "door_open"]) == 15

    recovery = _recover(outbox, volume, clock)
    assert recovery is not None and recovery.lost == 5
    outbox.ack(_ack(outbox, outbox.volatile_stream_id, 11))
    recovered = next(
        b for b in _bodies(outbox.next_batch(limit=10, exclude=set())) if b.get("name")
    )
    assert recovered["name"] == "storage_recovered" and recovered["detail"]["lost"] == 5


def test_a_volatile_event_waits_for_the_durable_events_of_its_alarm(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock)
    raised = outbox.append_alarm(_door(clock, 1, Transition.RAISED), clock_synced=True)
    other = outbox.append_alarm(_door(clock, 2, Transition.RAISED), clock_synced=True)
    assert raised is not None and other is not None
    volume.fill()
    outbox.append_alarm(_door(clock, 1, Transition.CLEARED), clock_synced=True)
    batch = outbox.next_batch(limit=10, exclude=set())
    # The storage alarm goes at once; door1's clear not before door1's raise is acknowledged.
    assert [(i.space, i.seq) for i in batch] == [("volatile", 1), ("event", 1), ("event", 2)]
    outbox.ack(_ack(outbox, outbox.stream_id, raised.seq))
    batch = outbox.next_batch(limit=10, exclude=set())
    assert [(i.space, i.seq) for i in batch] == [("volatile", 1), ("volatile", 2), ("event", 2)]


def test_acks_while_full_are_remembered_then_deleted(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock)
    for n in range(3):
        outbox.append_alarm(_door(clock, n, Transition.RAISED), clock_synced=True)
    outbox.append_samples(
        [Sample("env", "temperature", 21.0, "degC", clock.now())], clock_synced=True
    )
    assert outbox.flush() == 1
    volume.fill()
    outbox.append_alarm(_door(clock, 9, Transition.RAISED), clock_synced=True)
    outbox.ack(_ack(outbox, outbox.stream_id, 3, telemetry=[SeqRange(first=1, last=1)]))
    assert [i.space for i in outbox.next_batch(limit=10, exclude=set())] == ["volatile"] * 2
    assert outbox.settled_through()[0] == 3

    _recover(outbox, volume, clock)
    db = sqlite3.connect(volume.mountpoint / "outbox.db")
    try:
        # Deleted once the disk took writes again; what is left is the recovery's own events.
        assert db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0] == 0
        assert db.execute("SELECT MIN(seq) FROM events").fetchone()[0] == 4
    finally:
        db.close()


def test_telemetry_that_cannot_be_stored_is_counted_as_thinned(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock)
    volume.fill()
    outbox.append_alarm(_door(clock, 1, Transition.RAISED), clock_synced=True)
    for _ in range(3):
        outbox.append_samples(
            [Sample("env", "temperature", 21.0, "degC", clock.now())], clock_synced=True
        )
    assert outbox.health().thinned_total == 3
    recovery = _recover(outbox, volume, clock)
    assert recovery is not None
    outbox.ack(_ack(outbox, outbox.volatile_stream_id, 2))
    state = next(b for b in _bodies(outbox.next_batch(limit=10, exclude=set())) if b.get("name"))
    assert state["detail"]["telemetry_dropped"] == 3
    assert outbox.health().thinned_total == 3  # now kept in the outbox itself


def test_a_nearly_full_disk_raises_storage_fault_while_writes_still_work(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock, min_free_mib=2)
    assert outbox.check() is None
    assert outbox.next_batch(limit=10, exclude=set()) == []
    with (volume.mountpoint / "ballast").open("wb") as out:
        out.write(b"\0" * (7 * 1024 * 1024))
    outbox.check()
    door = outbox.append_alarm(_door(clock, 1, Transition.RAISED), clock_synced=True)
    assert door is not None and door.stream_id == outbox.stream_id  # still durable
    first = _bodies(outbox.next_batch(limit=10, exclude=set()))[0]
    assert (first["alarm_type"], first["transition"], first["value"]) == (
        "storage_fault",
        "raised",
        "low_space",
    )
    assert "nearly full" in first["reason"]
    (volume.mountpoint / "ballast").unlink()
    outbox.check()
    outbox.ack(_ack(outbox, outbox.volatile_stream_id, 1))
    last = _bodies(outbox.next_batch(limit=10, exclude=set()))[-1]
    assert (last["alarm_type"], last["transition"]) == ("storage_fault", "cleared")


def test_an_outbox_opened_on_a_full_disk_is_refused_not_moved_aside(
    volume: TmpfsVolume, clock: ManualClock
) -> None:
    outbox = _open(volume, clock)
    outbox.append_alarm(_door(clock, 1, Transition.RAISED), clock_synced=True)
    stream = outbox.stream_id
    outbox.close()
    volume.fill()
    with pytest.raises(StorageError) as refused:
        _open(volume, clock)
    assert refused.value.kind == "full"
    assert list(volume.mountpoint.glob("outbox.db.corrupt-*")) == []
    volume.free()
    again = _open(volume, clock)
    assert again.stream_id == stream and again.health().events_pending == 1


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (OSError(28, "No space left on device"), "full"),
        (OSError(30, "Read-only file system"), "read_only"),
        (OSError(5, "Input/output error"), "io_error"),
        (sqlite3.OperationalError("database or disk is full"), "full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read_only"),
        (sqlite3.OperationalError("disk I/O error"), "io_error"),
    ],
)
def test_storage_errors_are_recognised(err: Exception, kind: str) -> None:
    fault = storage_error(err)
    assert fault is not None and fault.kind == kind


def test_an_io_error_is_told_apart_by_asking_the_file_system(volume: TmpfsVolume) -> None:
    # SQLite reports a failing write as "disk I/O error" whatever the kernel said.
    vague = sqlite3.OperationalError("disk I/O error")
    fault = storage_error(vague, directory=volume.mountpoint)
    assert fault is not None and fault.kind == "io_error"
    volume.fill()
    fault = storage_error(vague, directory=volume.mountpoint)
    assert fault is not None and fault.kind == "full"


def test_other_errors_are_no_storage_fault() -> None:
    assert storage_error(sqlite3.OperationalError("no such table: x")) is None
    assert storage_error(ValueError("x")) is None
