"""How a component of the agent starts its long-lived tasks.

The agent's runtime hands components its supervisor (``agent.runtime.supervisor``), which
restarts a task that dies and feeds systemd's watchdog only while essential tasks make
progress; a component used on its own (tests, benchmarks, tools) gets ``start_plain``. Either
way a task reports progress with ``beat()`` and is stopped with ``await stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

TaskFactory = Callable[[], Coroutine[Any, Any, None]]


class TaskHandle(Protocol):
    """A started task, as its owner sees it."""

    def beat(self) -> None:
        """The task made progress (a loop turned)."""
        ...

    async def stop(self) -> None:
        """Cancel the task (no restart) and wait for it."""
        ...


class TaskStarter(Protocol):
    """Starts a named task from a factory (called again for a restart)."""

    def __call__(
        self, name: str, factory: TaskFactory, *, stall_after_s: float | None = None
    ) -> TaskHandle:
        """Start ``name``; ``stall_after_s``: without a beat for this long it is stuck."""
        ...


class _PlainHandle:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def beat(self) -> None:
        """Nobody watches."""

    async def stop(self) -> None:
        """Cancel and wait."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def start_plain(
    name: str, factory: TaskFactory, *, stall_after_s: float | None = None
) -> TaskHandle:
    """Start ``name`` as a plain asyncio task: not restarted, not watched."""
    return _PlainHandle(asyncio.create_task(factory(), name=name))
