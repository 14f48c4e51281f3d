"""The SD card fills, turns read-only, or fails, under real agents opening and closing a door:
asserted from the collector's side, nothing the agents saw goes unrecorded.

Three agents run side by side on one broker and collector, each with its data directory on
its own real fault (as root, as CI runs; nothing fakes SQLite):

- ``full``: a size-limited tmpfs filled to its last byte (ENOSPC); this agent's in-memory
  queue is made small (10) so that it overflows and the lost count is checked too;
- ``read_only``: ext4 mounted ``errors=remount-ro`` that the kernel remounts read-only (EROFS),
  then replaced by a checked copy, as a card is checked and mounted again;
- ``io_error``: an ``LD_PRELOAD`` shim (``fixtures/eio_shim.c``, built with gcc) failing every
  write under the directory with EIO while a control file exists.

For each: the storage_fault alarm reaches the collector within 10 s; every door transition
made during the fault reaches it (from the outbox or from memory) unless the documented queue
overflowed, and then the lost count the agent reports equals the missing ones; recording
resumes by itself (the alarm clears); and after recovery a ``kill -9`` loses nothing recorded
since (the collector is down meanwhile, so it can only have come from the outbox).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from simulators.gpio import GpioDriver
from simulators.stack import AgentProcess, Stack
from simulators.storage import EioShim, Ext4Volume, TmpfsVolume
from tests.conftest import budget, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting file systems needs root"),
]

SHIM = Path(__file__).resolve().parent / "fixtures" / "eio_shim.c"
PROFILES = Path(__file__).resolve().parent / "fixtures" / "profiles"
DOOR_PIN = 17
# The door moves this often: far slower than the agent's 5 ms poll, so it sees every move.
FLIP_S = 0.1
SMALL_QUEUE = 10


@dataclass
class Box:
    """One agent on one fault, and what the test did to its door."""

    fault: str
    agent: AgentProcess
    fail: Callable[[], None]
    heal: Callable[[], None]
    level: bool = False
    # Door transitions made (True: opened), by phase.
    made: dict[str, list[bool]] = field(default_factory=dict)
    failed_at: float = 0.0


def _site(agent_id: str, data: Path, *, volatile_max: int) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "site_id": f"PM-{agent_id.upper()}",
        "site_kind": "pm",
        "profiles_dir": str(PROFILES),
        "mqtt": {"heartbeat_s": 2, "resend_after_s": 2, "reconnect_min_s": 0.2},
        "outbox": {"path": str(data / "outbox.db"), "volatile_max": volatile_max},
        "devices": [
            {
                "driver": "gpio",
                "id": "entrance",
                "profile": "gpio-fast-door",
                "pins": {"door": DOOR_PIN},
                "poll_ms": 5,
            }
        ],
    }


def _add(
    stack: Stack, tmp_path: Path, fault: str, data: Path, *, volatile_max: int = 1000
) -> AgentProcess:
    agent_id = f"{fault.replace('_', '')}-{uuid.uuid4().hex[:6]}"
    site = tmp_path / f"{agent_id}.yaml"
    site.write_text(yaml.safe_dump(_site(agent_id, data, volatile_max=volatile_max)))
    outbox = data / "outbox.db"
    # The stack puts every outbox in its own folder: this one goes on the fault.
    agent = stack.add_agent(
        site, rewrite=lambda raw: {**raw, "outbox": {**raw["outbox"], "path": str(outbox)}}
    )
    agent.outbox_path = outbox
    return agent


@pytest.fixture
def boxes(tmp_path: Path) -> Iterator[tuple[Stack, list[Box]]]:
    shim = EioShim.build(SHIM, tmp_path / "shim")
    with ExitStack() as cleanup:
        full = cleanup.enter_context(TmpfsVolume(tmp_path / "full", size_mib=16))
        ext4 = cleanup.enter_context(
            Ext4Volume(tmp_path / "ro", image_dir=tmp_path / "images", size_mib=32)
        )
        eio_dir, control = tmp_path / "eio", tmp_path / "eio-fails"
        eio_dir.mkdir()
        stack = Stack(tmp_path / "stack")
        # Stopped before the file systems go (the ExitStack unwinds in reverse).
        cleanup.callback(stack.stop)
        stack.broker.start()
        stack.noc_token = stack.create_token(name="noc", role="noc")
        stack.start_collector()

        def fill() -> None:
            full.fill()

        boxes = [
            Box(
                "full",
                _add(stack, tmp_path, "full", full.mountpoint, volatile_max=SMALL_QUEUE),
                fail=fill,
                heal=full.free,
            ),
            Box(
                "read_only",
                _add(stack, tmp_path, "read_only", ext4.mountpoint),
                ext4.fail,
                ext4.replace,
            ),
        ]
        stack.env.update(shim.env(under=eio_dir, control=control))
        boxes.append(
            Box(
                "io_error",
                _add(stack, tmp_path, "io_error", eio_dir),
                fail=lambda: EioShim.fail(control),
                heal=lambda: EioShim.heal(control),
            )
        )
        for box in boxes:
            stack.wait_for_gpio(box.agent.agent_id)
        stack.wait_ready()
        yield stack, boxes


def _flip_all(boxes: list[Box], phase: str, count: int) -> None:
    drivers = {b.fault: GpioDriver(b.agent.gpio_socket, timeout_s=2.0) for b in boxes}
    for _ in range(count):
        for box in boxes:
            box.level = not box.level
            # Pull-up: the pin high means the contact open, the door open.
            drivers[box.fault].set(DOOR_PIN, box.level)
            box.made.setdefault(phase, []).append(box.level)
        time.sleep(FLIP_S)


def _events(stack: Stack, agent_id: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(stack.db_url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                sa.text("SELECT payload FROM inbound_events WHERE agent_id = :a"), {"a": agent_id}
            )
            return [json.loads(r[0]) for r in rows]
    finally:
        engine.dispose()


def _doors(stack: Stack, agent_id: str) -> list[dict[str, Any]]:
    doors = [e for e in _events(stack, agent_id) if e.get("alarm_type") == "door_open"]
    return sorted(doors, key=lambda e: e["ts"])


def _storage_alarm(stack: Stack, box: Box) -> str | None:
    engine = sa.create_engine(stack.db_url)
    try:
        with engine.connect() as db:
            return db.execute(
                sa.text(
                    "SELECT state FROM alarms WHERE site_id = :s AND alarm_type = 'storage_fault'"
                    " ORDER BY id DESC"
                ),
                {"s": box.agent.site_id},
            ).scalar()
    finally:
        engine.dispose()


def _made(box: Box) -> int:
    return sum(len(moves) for moves in box.made.values())


def test_a_failing_disk_loses_no_alarm_the_agent_could_keep(
    boxes: tuple[Stack, list[Box]],
) -> None:
    stack, all_boxes = boxes
    flips = budget(short=2 * SMALL_QUEUE + 4, long=200)
    _flip_all(all_boxes, "before", 4)
    for box in all_boxes:
        wait_for(
            f"{box.fault}: the first doors", lambda b=box: len(_doors(stack, b.agent.agent_id)) == 4
        )

    for box in all_boxes:
        box.fail()
        box.failed_at = time.monotonic()
    # The collector is paused for the first moves: nothing is acknowledged, so what the
    # agents keep in memory piles up, and the small queue of the full disk's agent overflows.
    paused = stack.collector.pid
    assert paused is not None
    os.killpg(paused, signal.SIGSTOP)
    try:
        _flip_all(all_boxes, "during", 2 * SMALL_QUEUE)
    finally:
        os.killpg(paused, signal.SIGCONT)
    _flip_all(all_boxes, "during", flips - 2 * SMALL_QUEUE)
    for box in all_boxes:
        wait_for(
            f"{box.fault}: the storage_fault alarm",
            lambda b=box: _storage_alarm(stack, b) == "active",
            timeout_s=max(0.1, 10 - (time.monotonic() - box.failed_at)),
        )
        raised = next(
            e for e in _events(stack, box.agent.agent_id) if e.get("alarm_type") == "storage_fault"
        )
        # Sent from memory: on the agent's volatile stream, not its outbox's.
        assert raised["stream_id"] != _durable_stream(stack, box), raised
        assert raised["value"] in {box.fault, "low_space"}, raised
    for box in all_boxes:
        box.heal()
    for box in all_boxes:
        wait_for(
            f"{box.fault}: recording resumed (storage_fault cleared)",
            lambda b=box: _storage_alarm(stack, b) == "cleared",
            timeout_s=30,
        )
    _flip_all(all_boxes, "after", 4)

    for box in all_boxes:
        wait_for(
            f"{box.fault}: the doors of the fault and after",
            lambda b=box: (
                (lost := _lost(stack, b)) is not None
                and len(_doors(stack, b.agent.agent_id)) + lost == _made(b)
            ),
        )
        lost = _lost(stack, box)
        doors = _doors(stack, box.agent.agent_id)
        streams = {e["stream_id"] for e in doors}
        if box.fault == "full":
            # 20 moves unacknowledged for a queue of 10: it overflowed, and the count says
            # by how much.
            assert lost > 0 and len(streams) == 2, (lost, streams)
        else:
            assert lost == 0 and len(streams) == 2, (lost, streams)
        if lost == 0:
            # Every move, in order: opened, closed, opened...
            assert [e["transition"] == "raised" for e in doors] == [
                m for phase in box.made.values() for m in phase
            ]

    # After recovery, what is recorded is in the outbox: the collector is away, the agent is
    # killed, restarted, and everything arrives all the same.
    stack.collector.stop()
    _flip_all(all_boxes, "killed", 4)
    time.sleep(0.5)
    for box in all_boxes:
        box.agent.process.kill()
        box.agent.process.start()
    stack.start_collector()
    for box in all_boxes:
        wait_for(
            f"{box.fault}: the doors recorded before kill -9",
            lambda b=box: len(_doors(stack, b.agent.agent_id)) + _lost(stack, b) == _made(b),  # type: ignore[operator]
            timeout_s=60,
        )
        doors = _doors(stack, box.agent.agent_id)
        assert [e["transition"] == "raised" for e in doors[-4:]] == box.made["killed"]


def _durable_stream(stack: Stack, box: Box) -> str:
    engine = sa.create_engine(stack.db_url)
    try:
        with engine.connect() as db:
            return str(
                db.execute(
                    sa.text("SELECT stream_id FROM agents WHERE agent_id = :a"),
                    {"a": box.agent.agent_id},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _lost(stack: Stack, box: Box) -> int | None:
    """The lost count the agent reported once recording resumed (None: not yet arrived)."""
    for event in _events(stack, box.agent.agent_id):
        if event.get("name") == "storage_recovered":
            return int(event["detail"]["lost"])
    return None
