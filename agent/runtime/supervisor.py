"""Every long-lived task of the agent runs supervised: none dies or hangs unnoticed.

A task that dies is logged with its traceback, reported (``on_failure``: the runtime makes a
``task_failed`` state event and an agent alarm of it) and restarted with a doubling backoff;
a task that stops reporting progress (``beat()``) for longer than its ``stall_after_s`` is
cancelled and counts as dead. A *fatal* task (the link's, the storage check) that dies
``fatal_after`` times within the window makes the process give up (``failed``), so systemd
starts it afresh; a device poller never does (a broken sensor is not cured by a restart: it
stays reported, and is retried). Once a restarted task has run ``healthy_after_s`` it counts as
recovered (``on_recovery``: the alarm clears).

The watchdog asks ``problems()``: systemd is pinged only while every essential task is alive
and has made progress recently, and while this supervisor's own loop runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.tasks import TaskFactory, TaskHandle
from clocks import Clock

log = logging.getLogger(__name__)

CHECK_S = 0.5


@dataclass(frozen=True, slots=True)
class SupervisionPolicy:
    """How hard the supervisor tries before giving up on a task, or on the process."""

    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    # A fatal task dying this many times within the window ends the process (exit non-zero).
    fatal_after: int = 5
    window_s: float = 600.0
    # A restarted task alive (and beating) this long is recovered.
    healthy_after_s: float = 60.0


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """One death, as reported to the collector."""

    task: str
    error: str
    # Deaths within the window, this one included.
    deaths: int
    # When it is started again; None: it is not (the process exits).
    restart_in_s: float | None
    # The first death since the task last ran healthy (the alarm is raised on this one).
    first: bool


@dataclass(frozen=True, slots=True)
class Watched:
    """A task started elsewhere (a device poller), as its owner shows it."""

    task: asyncio.Task[None] | None
    # A count that grows while the task works (its polls, failed ones included).
    progress: int
    stall_after_s: float | None


@dataclass
class _Entry:
    name: str
    essential: bool
    fatal: bool
    stall_after_s: float | None
    factory: TaskFactory | None = None
    task: asyncio.Task[None] | None = None
    started: float = 0.0
    last_progress: float = 0.0
    progress: int = 0
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    failing: bool = False
    last_error: str | None = None
    stopped: bool = False


class _Handle:
    def __init__(self, supervisor: Supervisor, entry: _Entry) -> None:
        self._supervisor = supervisor
        self._entry = entry

    def beat(self) -> None:
        self._entry.last_progress = self._supervisor.clock.monotonic()

    async def stop(self) -> None:
        await self._supervisor.stop_task(self._entry.name)


class Supervisor:
    """``async with``: runs the check loop; ``start`` and ``watch_group`` put tasks under it."""

    def __init__(
        self,
        *,
        clock: Clock,
        on_failure: Callable[[TaskFailure], None],
        on_recovery: Callable[[str], None],
        policy: SupervisionPolicy | None = None,
    ) -> None:
        self.clock = clock
        self._on_failure = on_failure
        self._on_recovery = on_recovery
        self.policy = policy or SupervisionPolicy()
        self._entries: dict[str, _Entry] = {}
        self._group: (
            tuple[Callable[[], dict[str, Watched]], Callable[[str], Awaitable[None]]] | None
        ) = None
        self._loop_task: asyncio.Task[None] | None = None
        self._since = clock.monotonic()
        # Failing tasks the previous process left raised: cleared once this one runs healthy.
        self._inherited: set[str] = set()
        self.fatal: str | None = None
        self.failed = asyncio.Event()

    async def __aenter__(self) -> Supervisor:
        self._since = self.clock.monotonic()
        self._loop_task = asyncio.create_task(self._run(), name="supervisor")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for name in list(self._entries):
            await self.stop_task(name)

    # -- putting tasks under supervision -------------------------------------------------

    def start(
        self,
        name: str,
        factory: TaskFactory,
        *,
        stall_after_s: float | None = None,
        essential: bool = True,
        fatal: bool = True,
    ) -> TaskHandle:
        """Start ``name`` from ``factory`` (called again at each restart)."""
        entry = _Entry(
            name=name,
            essential=essential,
            fatal=fatal,
            stall_after_s=stall_after_s,
            factory=factory,
        )
        self._entries[name] = entry
        self._launch(entry)
        return _Handle(self, entry)

    def starter(self, *, essential: bool = True, fatal: bool = True) -> _Starter:
        """A ``TaskStarter`` for a component: its tasks get this policy."""
        return _Starter(self, essential=essential, fatal=fatal)

    def watch_group(
        self,
        source: Callable[[], dict[str, Watched]],
        restart: Callable[[str], Awaitable[None]],
    ) -> None:
        """Watch tasks someone else starts (``source``: name -> task as it is now); a dead or
        stuck one is restarted by ``restart(name)``. Never essential, never fatal. One group
        (the device pollers)."""
        self._group = (source, restart)

    def inherit_failing(self, names: Iterable[str]) -> None:
        """Tasks a previous process reported failing: recovered once this one runs healthy."""
        self._inherited.update(names)

    async def stop_task(self, name: str) -> None:
        """Cancel ``name`` for good and wait for it."""
        entry = self._entries.pop(name, None)
        if entry is None or entry.task is None:
            return
        entry.stopped = True
        entry.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await entry.task

    # -- what the watchdog and the technician see ----------------------------------------

    def problems(self) -> list[str]:
        """Why the watchdog must not be fed now (empty: it may)."""
        found = []
        if self._loop_task is None or self._loop_task.done():
            found.append("the task supervisor is not running")
        now = self.clock.monotonic()
        for entry in self._entries.values():
            if not entry.essential:
                continue
            if entry.task is None or entry.task.done():
                found.append(f"task {entry.name} is not running")
            elif self._stalled(entry, now):
                found.append(
                    f"task {entry.name} made no progress for {now - entry.last_progress:.0f} s"
                )
        return found

    def status(self) -> list[dict[str, Any]]:
        """Each supervised task: running, essential, deaths in the window, last error."""
        now = self.clock.monotonic()
        return [
            {
                "task": e.name,
                "running": e.task is not None and not e.task.done(),
                "essential": e.essential,
                "failing": e.failing,
                "deaths": len(e.deaths),
                "last_error": e.last_error,
                "idle_s": round(now - e.last_progress, 1),
            }
            for e in sorted(self._entries.values(), key=lambda e: e.name)
        ]

    # -- the check -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                # The supervisor must outlive whatever it watches: log, go on.
                log.exception("task supervision check failed")
            await asyncio.sleep(CHECK_S)

    async def check(self) -> None:
        """One round: deaths, stalls, restarts due, recoveries."""
        now = self.clock.monotonic()
        for entry in list(self._entries.values()):
            if entry.factory is None:
                continue  # a watched task: its group restarts it
            self._examine(entry, now)
            if entry.restart_at is not None and now >= entry.restart_at and self.fatal is None:
                entry.restart_at = None
                log.warning("restarting task %s", entry.name)
                self._launch(entry)
        if self._group is not None:
            await self._check_group(*self._group, now)
        for entry in self._entries.values():
            self._maybe_recovered(entry, now)
        if self._inherited and now - self._since >= self.policy.healthy_after_s:
            for name in sorted(self._inherited):
                current = self._entries.get(name)
                if current is None or not current.failing:
                    self._on_recovery(name)
            self._inherited.clear()

    async def _check_group(
        self,
        source: Callable[[], dict[str, Watched]],
        restart: Callable[[str], Awaitable[None]],
        now: float,
    ) -> None:
        current = source()
        for name in [n for n, e in self._entries.items() if e.factory is None]:
            # Removed by a reload: its alarm, if any, has nothing left to report.
            if name not in current and self._entries.pop(name).failing:
                self._on_recovery(name)
        for name, watched in current.items():
            entry = self._entries.get(name)
            if entry is None:
                entry = _Entry(
                    name=name, essential=False, fatal=False, stall_after_s=watched.stall_after_s
                )
                self._entries[name] = entry
            if watched.task is not entry.task:
                # Started (or restarted, or reloaded) since the last look.
                entry.task, entry.started, entry.last_progress = watched.task, now, now
                entry.progress = watched.progress
            entry.stall_after_s = watched.stall_after_s
            if watched.progress != entry.progress:
                entry.progress, entry.last_progress = watched.progress, now
            self._examine(entry, now)
            if entry.restart_at is not None and now >= entry.restart_at:
                entry.restart_at = None
                log.warning("restarting task %s", name)
                try:
                    await restart(name)
                except Exception as err:
                    self._died(entry, f"restart failed: {type(err).__name__}: {err}", err, now)

    def _examine(self, entry: _Entry, now: float) -> None:
        task = entry.task
        if task is None or entry.restart_at is not None:
            return
        if task.done():
            if task.cancelled():
                if entry.factory is None:
                    return  # stopped by its owner (a reload)
                self._died(entry, "cancelled", None, now)
                return
            err = task.exception()
            if err is None:
                self._died(entry, "returned (it should run until stopped)", None, now)
            else:
                self._died(entry, f"{type(err).__name__}: {err}", err, now)
        elif self._stalled(entry, now):
            stuck_s = now - entry.last_progress
            task.cancel()
            self._died(entry, f"no progress for {stuck_s:.0f} s: cancelled", None, now)

    def _stalled(self, entry: _Entry, now: float) -> bool:
        return entry.stall_after_s is not None and now - entry.last_progress > entry.stall_after_s

    def _died(self, entry: _Entry, error: str, err: BaseException | None, now: float) -> None:
        policy = self.policy
        while entry.deaths and now - entry.deaths[0] > policy.window_s:
            entry.deaths.popleft()
        entry.deaths.append(now)
        entry.last_error = error[:500]
        first = not entry.failing
        entry.failing = True
        deaths = len(entry.deaths)
        restart_in: float | None = min(
            policy.backoff_max_s, policy.backoff_min_s * 2 ** (deaths - 1)
        )
        if entry.fatal and deaths >= policy.fatal_after:
            restart_in = None
        trace = "".join(traceback.format_exception(err)) if err is not None else ""
        log.error(
            "TASK %s DIED (%d in %.0f s): %s%s\n%s",
            entry.name,
            deaths,
            policy.window_s,
            error,
            "" if restart_in is None else f"; restart in {restart_in:.0f} s",
            trace,
        )
        if entry.factory is not None:
            entry.task = None  # its own: started again from the factory
        if restart_in is None:
            self.fatal = (
                f"task {entry.name} died {deaths} times in {policy.window_s:.0f} s: {error}"
            )
            log.critical("GIVING UP: %s; the agent exits so that systemd restarts it", self.fatal)
        else:
            entry.restart_at = now + restart_in
        try:
            self._on_failure(
                TaskFailure(
                    task=entry.name,
                    error=entry.last_error,
                    deaths=deaths,
                    restart_in_s=restart_in,
                    first=first,
                )
            )
        finally:
            if self.fatal is not None:
                self.failed.set()

    def _maybe_recovered(self, entry: _Entry, now: float) -> None:
        if not entry.failing or entry.task is None or entry.task.done():
            return
        if entry.restart_at is not None or now - entry.started < self.policy.healthy_after_s:
            return
        if self._stalled(entry, now):
            return
        entry.failing = False
        log.info("task %s runs again", entry.name)
        self._on_recovery(entry.name)

    def _launch(self, entry: _Entry) -> None:
        assert entry.factory is not None
        now = self.clock.monotonic()
        entry.task = asyncio.create_task(entry.factory(), name=entry.name)
        entry.started = entry.last_progress = now


class _Starter:
    """A ``TaskStarter`` bound to a supervisor and a policy."""

    def __init__(self, supervisor: Supervisor, *, essential: bool, fatal: bool) -> None:
        self._supervisor = supervisor
        self._essential = essential
        self._fatal = fatal

    def __call__(
        self, name: str, factory: TaskFactory, *, stall_after_s: float | None = None
    ) -> TaskHandle:
        return self._supervisor.start(
            name,
            factory,
            stall_after_s=stall_after_s,
            essential=self._essential,
            fatal=self._fatal,
        )
