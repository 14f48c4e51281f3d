"""No agent task dies or hangs unnoticed: it is logged with its traceback, reported, restarted
with backoff, recovered after a healthy while, and a fatal one that keeps dying ends the
process. Time is a manual clock; each test runs the supervisor's check by hand."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.runtime.supervisor import SupervisionPolicy, Supervisor, TaskFailure, Watched
from clocks import ManualClock

POLICY = SupervisionPolicy(backoff_min_s=1, backoff_max_s=8, fatal_after=3, healthy_after_s=60)


class Recorder:
    """What the runtime is told."""

    def __init__(self) -> None:
        self.failures: list[TaskFailure] = []
        self.recovered: list[str] = []

    def supervisor(self, clock: ManualClock) -> Supervisor:
        return Supervisor(
            clock=clock,
            on_failure=self.failures.append,
            on_recovery=self.recovered.append,
            policy=POLICY,
        )


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_dead_task_is_logged_reported_restarted_and_recovers(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Recorder()
    supervisor = seen.supervisor(clock)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("the driver fell over")
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR):
        supervisor.start("link-sender", flaky)
        await _settle()
        await supervisor.check()
    assert [(f.task, f.first, f.deaths, f.restart_in_s) for f in seen.failures] == [
        ("link-sender", True, 1, 1.0)
    ]
    assert "RuntimeError: the driver fell over" in seen.failures[0].error
    assert "Traceback" in caplog.text and "the driver fell over" in caplog.text
    assert supervisor.status()[0]["running"] is False

    clock.advance(seconds=1)
    await supervisor.check()
    await _settle()
    assert runs == 2 and supervisor.status()[0]["running"] is True
    clock.advance(seconds=59)
    await supervisor.check()
    assert seen.recovered == []
    clock.advance(seconds=1)
    await supervisor.check()
    assert seen.recovered == ["link-sender"]
    await supervisor.stop_task("link-sender")


async def test_a_fatal_task_that_keeps_dying_ends_the_process(clock: ManualClock) -> None:
    seen = Recorder()
    supervisor = seen.supervisor(clock)

    async def broken() -> None:
        raise OSError("no such device")

    supervisor.start("storage", broken)
    for delay in (1, 2):
        await _settle()
        await supervisor.check()
        assert not supervisor.failed.is_set()
        clock.advance(seconds=delay)
        await supervisor.check()
    await _settle()
    await supervisor.check()
    assert [f.restart_in_s for f in seen.failures] == [1.0, 2.0, None]
    # Reported once when it started failing, and once more when the agent gives up.
    assert [f.first for f in seen.failures] == [True, False, False]
    assert supervisor.failed.is_set()
    assert supervisor.fatal is not None and "storage died 3 times" in supervisor.fatal


async def test_a_hung_task_is_cancelled_and_restarted(clock: ManualClock) -> None:
    seen = Recorder()
    supervisor = seen.supervisor(clock)
    runs: list[asyncio.Task[None] | None] = []

    async def sender() -> None:
        runs.append(asyncio.current_task())
        await asyncio.Event().wait()  # alive, never beating: stuck

    handle = supervisor.start("link-sender", sender, stall_after_s=30)
    await _settle()
    clock.advance(seconds=30)
    handle.beat()  # made progress just now: not stuck
    await supervisor.check()
    assert seen.failures == []
    clock.advance(seconds=31)
    await supervisor.check()
    await _settle()
    assert seen.failures[0].error == "no progress for 31 s: cancelled"
    first = runs[0]
    assert first is not None and first.cancelled()
    clock.advance(seconds=1)
    await supervisor.check()
    await _settle()
    assert len(runs) == 2
    await supervisor.stop_task("link-sender")


async def test_device_pollers_are_restarted_by_their_owner_and_never_fatal(
    clock: ManualClock,
) -> None:
    seen = Recorder()
    supervisor = seen.supervisor(clock)
    pollers: dict[str, Watched] = {}
    restarted: list[str] = []

    async def dies() -> None:
        raise ValueError("pin 99 is not a valid pin name")

    async def restart(name: str) -> None:
        restarted.append(name)
        pollers[name] = Watched(task=asyncio.create_task(dies()), progress=0, stall_after_s=60)

    supervisor.watch_group(lambda: dict(pollers), restart)
    await restart("device-door")
    restarted.clear()
    for delay in (1, 2, 4, 8, 8):
        await _settle()
        await supervisor.check()
        clock.advance(seconds=delay)
        await supervisor.check()
    assert restarted == ["device-door"] * 5
    assert not supervisor.failed.is_set()
    assert [f.first for f in seen.failures] == [True] + [False] * 4
    # Removed by a reload: its alarm has nothing left to report.
    pollers.clear()
    await supervisor.check()
    assert seen.recovered == ["device-door"]


async def test_what_a_previous_process_left_failing_clears_once_this_one_runs_healthy(
    clock: ManualClock,
) -> None:
    seen = Recorder()
    supervisor = seen.supervisor(clock)

    async def fine() -> None:
        await asyncio.Event().wait()

    supervisor.start("link-sender", fine)
    supervisor.inherit_failing(["link-sender", "device-gone"])
    clock.advance(seconds=59)
    await supervisor.check()
    assert seen.recovered == []
    clock.advance(seconds=1)
    await supervisor.check()
    assert seen.recovered == ["device-gone", "link-sender"]
    await supervisor.stop_task("link-sender")
