"""Composes sensing, the outbox and the MQTT link into one long-lived agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

from agent.buffer import Outbox
from agent.buffer.bootcount import next_boot
from agent.clocksync import kernel_clock_synced
from agent.config import ConfigError, SiteConfig, load_site, load_site_text
from agent.events import AlarmTransition, Sample
from agent.link import AgentLink
from agent.runtime.status import StatusServer, status_socket_path
from agent.runtime.watchdog import Watchdog
from agent.sensing import SensingService
from clocks import Clock
from protocol import (
    AlarmSnapshot,
    CommandMessage,
    ConfigMessage,
    DeviceHealth,
    Severity,
    Transition,
)
from protocol.acksig import read_key_file

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
CONFIG_POLL_S = 2.0


class _Sink:
    """Hands sensing output to the outbox, then wakes the link.

    Alarms are committed with fsync on the event-loop thread on purpose: an alarm must be
    durable before it may be published, and keeping one writer keeps the sequence order equal
    to the order the transitions happened in.
    """

    def __init__(self, outbox: Outbox, synced: Callable[[], bool]) -> None:
        self._outbox = outbox
        self._synced = synced
        self.wake: Callable[[], None] = lambda: None

    def transition(self, event: AlarmTransition) -> None:
        self._outbox.append_alarm(event, clock_synced=self._synced())
        self.wake()

    def samples(self, samples: Sequence[Sample]) -> None:
        if samples:
            self._outbox.append_samples(samples, clock_synced=self._synced())
            self.wake()


class _Status:
    """What the link reports in birth and heartbeat messages."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self._rt = runtime

    def alarm_snapshot(self) -> list[AlarmSnapshot]:
        return self._rt.outbox.active_alarms()

    def config_hash(self) -> str:
        return self._rt.config.config_hash

    def device_health(self) -> list[DeviceHealth]:
        return self._rt.sensing.device_health() if self._rt.sensing else []

    def traps_rejected(self) -> int:
        return self._rt.sensing.traps_rejected() if self._rt.sensing else 0

    def clock_synced(self) -> bool:
        return self._rt.clock_synced()


class AgentRuntime:
    """One agent: ``await AgentRuntime(...).run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        *,
        config_path: Path,
        clock: Clock,
        clock_synced: Callable[[], bool] = kernel_clock_synced,
    ) -> None:
        self.config_path = config_path
        self.config: SiteConfig = load_site(config_path)
        self.ack_key = _read_ack_key(self.config, config_path)
        self.clock = clock
        self.clock_synced = clock_synced
        self.outbox: Outbox = Outbox.open(
            settings=self.config.outbox,
            agent_id=self.config.agent_id,
            site_id=self.config.site_id,
            clock=clock,
        )
        self.boot = next_boot(self.config.outbox.path.with_name("boot"))
        self.sensing: SensingService | None = None
        self._link: AgentLink | None = None
        self._config_mtime = _mtime(config_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Future[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; never exits because the broker is unreachable."""
        self._loop = asyncio.get_running_loop()
        self._report_recovery()
        sink = _Sink(self.outbox, self.clock_synced)
        sensing = SensingService(
            config=self.config,
            sink=sink,
            clock=self.clock,
            initial_alarms=self.outbox.active_alarms(),
        )
        link = AgentLink(
            settings=self.config.mqtt,
            outbox=self.outbox,
            agent_id=self.config.agent_id,
            site_id=self.config.site_id,
            boot=self.boot,
            agent_version=AGENT_VERSION,
            status=_Status(self),
            clock=self.clock,
            on_config=self._on_config_threadsafe,
            on_command=self._on_command_threadsafe,
            ack_key=self.ack_key,
        )
        self.sensing, self._link = sensing, link
        sink.wake = link.wake
        log.info(
            "agent %s (site %s) boot %d stream %s config %s",
            self.config.agent_id,
            self.config.site_id,
            self.boot,
            self.outbox.stream_id,
            self.config.config_hash,
        )
        try:
            status = StatusServer(status_socket_path(self.config.outbox.path), self.snapshot)
            # The watchdog last: READY=1 once the rest runs, STOPPING=1 first on the way out.
            async with link, sensing, status, Watchdog.from_environment():
                with _sighup(self._loop, self._reload_from_file):
                    watcher = asyncio.create_task(self._watch_config(stop), name="config-watch")
                    await stop.wait()
                    watcher.cancel()
        finally:
            self.outbox.close()

    def snapshot(self) -> dict[str, Any]:
        """Everything a technician's check shows, as of now."""
        link = self._link
        return {
            "agent_id": self.config.agent_id,
            "site_id": self.config.site_id,
            "boot": self.boot,
            "agent_version": AGENT_VERSION,
            "config_hash": self.config.config_hash,
            "clock_synced": self.clock_synced(),
            "now": self.clock.now().isoformat(),
            "broker_connected": bool(link and link.connected),
            "collector_up": bool(link and link.collector_up),
            "acks_authenticated": self.ack_key is not None,
            "acks_rejected": link.state.acks_rejected if link else 0,
            "outbox": self.outbox.health().model_dump(mode="json"),
            "stream_id": self.outbox.stream_id,
            "devices": [
                d.model_dump(mode="json")
                for d in (self.sensing.device_health() if self.sensing else [])
            ],
            "points": [
                {
                    "device_id": p.device_id,
                    "point": p.point,
                    "value": p.value,
                    "alarm_active": p.alarm_active,
                    "at": p.at.isoformat() if p.at else None,
                }
                for p in (self.sensing.live_values() if self.sensing else [])
            ],
            "active_alarms": [a.model_dump(mode="json") for a in self.outbox.active_alarms()],
        }

    def _report_recovery(self) -> None:
        if not self.outbox.recovered:
            return
        reason = self.outbox.recovery_reason or "unknown"
        log.error("OUTBOX RECOVERED: corrupt outbox moved aside, new stream started (%s)", reason)
        synced = self.clock_synced()
        self.outbox.append_state(
            name="outbox_recovered", detail={"reason": reason}, clock_synced=synced
        )
        self.outbox.append_alarm(
            AlarmTransition(
                equipment_id="agent",
                point="outbox",
                alarm_type="outbox_recovered",
                transition=Transition.RAISED,
                severity=Severity.MAJOR,
                value=None,
                reason=f"outbox was corrupt and has been moved aside: {reason}"[:500],
                ts=self.clock.now(),
            ),
            clock_synced=synced,
        )

    async def _watch_config(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(CONFIG_POLL_S)
            mtime = _mtime(self.config_path)
            if mtime != self._config_mtime:
                self._config_mtime = mtime
                await self._apply(lambda: load_site(self.config_path), origin="file change")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _reload_from_file(self) -> None:
        self._spawn(self._apply(lambda: load_site(self.config_path), origin="SIGHUP"))

    def _on_config_threadsafe(self, message: ConfigMessage) -> None:
        def load() -> SiteConfig:
            return load_site_text(
                message.site_yaml,
                source=f"collector push {message.config_hash}",
                profiles=message.profiles_yaml,
            )

        if self._loop is not None:
            self._loop.call_soon_threadsafe(
                lambda: self._spawn(self._apply(load, origin="collector push"))
            )

    def _on_command_threadsafe(self, message: CommandMessage) -> None:
        if message.command == "reload" and self._loop is not None:
            self._loop.call_soon_threadsafe(self._reload_from_file)
        elif message.command == "resend" and self._link is not None:
            link = self._link
            if self._loop is not None:
                self._loop.call_soon_threadsafe(link.resend)
        else:
            log.info("command %s (%s) not handled by this agent", message.command, message.cmd_id)

    async def _apply(self, load: Callable[[], SiteConfig], *, origin: str) -> None:
        """Validate first; an invalid config keeps the running one and is reported."""
        synced = self.clock_synced()
        try:
            new = load()
        except ConfigError as err:
            log.error(
                "config from %s rejected, keeping %s: %s", origin, self.config.config_hash, err
            )
            self.outbox.append_state(
                name="config_rejected",
                detail={"origin": origin, "error": str(err)[:500]},
                clock_synced=synced,
            )
            self._wake()
            return
        if new.config_hash == self.config.config_hash:
            return
        untouched = _needs_restart(self.config, new)
        if new.agent_id != self.config.agent_id or new.site_id != self.config.site_id:
            log.error("config from %s changes the agent or site id: rejected", origin)
            self.outbox.append_state(
                name="config_rejected",
                detail={"origin": origin, "error": "agent_id/site_id cannot change at run time"},
                clock_synced=synced,
            )
            self._wake()
            return
        assert self.sensing is not None
        await self.sensing.reload(new)
        self.config = new.model_copy(
            update={"mqtt": self.config.mqtt, "outbox": self.config.outbox}
        )
        log.info("config %s applied from %s", new.config_hash, origin)
        self.outbox.append_state(
            name="config_applied",
            detail={"origin": origin, "config_hash": new.config_hash, "needs_restart": untouched},
            clock_synced=synced,
        )
        self._wake()

    def _wake(self) -> None:
        if self._link is not None:
            self._link.wake()


def _read_ack_key(config: SiteConfig, config_path: Path) -> bytes | None:
    """The ack key the site file names (read at start, like the broker password)."""
    path = config.mqtt.ack_key_file
    if path is None:
        return None
    try:
        return read_key_file(path)
    except ValueError as err:
        raise ConfigError(str(config_path), "mqtt.ack_key_file", str(err)) from err


def _needs_restart(old: SiteConfig, new: SiteConfig) -> list[str]:
    # The outbox and the MQTT session are never touched by a reload.
    return [name for name in ("mqtt", "outbox") if getattr(old, name) != getattr(new, name)]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def _sighup(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> Iterator[None]:
    try:
        loop.add_signal_handler(signal.SIGHUP, handler)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        installed = False  # not the main thread (tests): reload by file change still works
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)
