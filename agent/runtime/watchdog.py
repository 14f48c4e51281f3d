"""systemd's notify protocol, spoken by the agent itself: no dependency, nothing without systemd.

Under a ``Type=notify`` unit systemd passes ``NOTIFY_SOCKET`` (a Unix datagram socket) and, with
``WatchdogSec=``, ``WATCHDOG_USEC``. The agent sends ``READY=1`` once it runs, ``WATCHDOG=1`` at
half the watchdog period and ``STOPPING=1`` when it shuts down. The pings come from a task on
the agent's event loop, so a loop that hangs (a blocking call in a driver, a deadlock) stops
pinging and systemd restarts the agent. They are also withheld while the task supervisor
reports a problem (``problems``: an essential task dead, or alive but making no progress), so
an agent that is running but no longer working is restarted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends state lines to systemd's notify socket; a failure is logged, never raised."""

    def __init__(self, address: str, *, watchdog_interval_s: float | None) -> None:
        # A leading "@" names a socket in the abstract namespace.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval_s = watchdog_interval_s
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> SystemdNotifier | None:
        """The notifier systemd asked for, or None when not started by a notify unit."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if not address.startswith(("/", "@")):
            return None
        return cls(address, watchdog_interval_s=_watchdog_interval_s(env, pid or os.getpid()))

    def notify(self, state: str) -> bool:
        """Send one state (``READY=1``...); False when systemd could not be told."""
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(state.encode(), self.address)
        except OSError as err:
            # Once, not at every ping: if systemd is really gone the watchdog will say so.
            if not self._failing:
                log.warning("cannot notify systemd on %s: %s", self.address, err)
            self._failing = True
            return False
        self._failing = False
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Watchdog:
    """``async with``: READY=1 on entry, WATCHDOG=1 pings while inside and ``problems()`` says
    nothing is wrong, STOPPING=1 on exit."""

    def __init__(
        self,
        notifier: SystemdNotifier | None,
        *,
        problems: Callable[[], list[str]] | None = None,
    ) -> None:
        self._notifier = notifier
        self._problems = problems or (lambda: [])
        self._pinger: asyncio.Task[None] | None = None

    @classmethod
    def from_environment(cls, *, problems: Callable[[], list[str]] | None = None) -> Watchdog:
        """A watchdog for what systemd asked for (doing nothing outside systemd)."""
        return cls(SystemdNotifier.from_environment(), problems=problems)

    async def __aenter__(self) -> Watchdog:
        notifier = self._notifier
        if notifier is None:
            return self
        notifier.notify("READY=1")
        interval = notifier.watchdog_interval_s
        if interval is not None:
            log.info("systemd watchdog: pinging every %.1f s", interval)
            self._pinger = asyncio.create_task(
                _ping(notifier, interval, self._problems), name="watchdog"
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        notifier = self._notifier
        if notifier is None:
            return
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        notifier.notify("STOPPING=1")
        notifier.close()


async def _ping(
    notifier: SystemdNotifier, interval_s: float, problems: Callable[[], list[str]]
) -> None:
    withheld: list[str] = []
    while True:
        found = problems()
        if not found:
            if withheld:
                log.warning("systemd watchdog fed again")
            notifier.notify("WATCHDOG=1")
        elif found != withheld:
            log.error(
                "SYSTEMD WATCHDOG NOT FED (systemd restarts the agent if this lasts): %s",
                "; ".join(found),
            )
        withheld = found
        await asyncio.sleep(interval_s)


def _watchdog_interval_s(env: Mapping[str, str], pid: int) -> float | None:
    """Half the watchdog period systemd set for this process, or None."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    # WATCHDOG_PID says which process the watchdog is for: not a child that inherited it.
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    if not usec.isdigit() or int(usec) == 0:
        log.warning("ignoring WATCHDOG_USEC=%r: not a positive number of microseconds", usec)
        return None
    return int(usec) / 1_000_000 / 2
