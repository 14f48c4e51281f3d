"""Composes sensing, the outbox and the MQTT link into one long-lived agent, every task of it
under one supervisor (``supervisor.py``) that systemd's watchdog listens to."""

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
from agent.events import AlarmTransition, Sample
from agent.link import AgentLink
from agent.link.clockoffset import OffsetEstimator
from agent.runtime.clockwatch import CHECK_EVERY_S, ClockWatch
from agent.runtime.status import StatusServer, status_socket_path
from agent.runtime.supervisor import SupervisionPolicy, Supervisor, TaskFailure, Watched
from agent.runtime.watchdog import Watchdog
from agent.sensing import SensingService
from agent.tasks import TaskFactory, TaskHandle
from clocks import Clock
from protocol import (
    AlarmSnapshot,
    CommandMessage,
    ConfigMessage,
    DeviceHealth,
    ListenerHealth,
    Severity,
    Transition,
)
from protocol.acksig import read_key_file
from siteconfig import ConfigError, Device, GpioDevice, SiteConfig, load_site, load_site_text

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
CONFIG_POLL_S = 2.0
# The storage check (free space, probe writes, recovery) runs this often.
STORAGE_CHECK_S = 1.0
# A task loop that has not turned for this long is stuck.
STALL_AFTER_S = 30.0
TASK_FAILED = "task_failed"
# A configuration the agent refused (it keeps running the previous one); the next accepted
# configuration clears it.
CONFIG_REJECTED = "config_rejected"
AGENT_EQUIPMENT = "agent"


class AgentFailed(RuntimeError):
    """A task the agent cannot run without kept dying: the process exits non-zero."""


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

    def config_error(self) -> str | None:
        return self._rt.config_error

    def listener_health(self) -> list[ListenerHealth]:
        return self._rt.sensing.listener_health() if self._rt.sensing else []

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
        supervision: SupervisionPolicy | None = None,
    ) -> None:
        self.config_path = config_path
        self.config: SiteConfig = load_site(config_path)
        self.ack_key = _read_ack_key(self.config, config_path)
        _check_link_files(self.config, config_path)
        self.clock = clock
        # The kernel's word on the clock, unless it stepped unmeasured; the offset measured
        # against the collector (``ClockWatch``).
        self.clock_watch = ClockWatch(
            clock=clock, offset=OffsetEstimator(clock), kernel_synced=clock_synced
        )
        self.clock_synced: Callable[[], bool] = self.clock_watch.clock_synced
        self.outbox: Outbox = Outbox.open(
            settings=self.config.outbox,
            agent_id=self.config.agent_id,
            site_id=self.config.site_id,
            clock=clock,
            clock_synced=self.clock_synced,
            clock_offset=self.clock_watch.offset_s,
        )
        self.clock_watch.resume(self.outbox.active_alarms())
        self.boot = _boot(self.config.outbox.path.with_name("boot"))
        self.sensing: SensingService | None = None
        self._link: AgentLink | None = None
        self._config_mtime = _mtime(config_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._policy = supervision
        self.supervisor: Supervisor | None = None
        self._handles: dict[str, TaskHandle] = {}
        self._reload_lock = asyncio.Lock()
        # The last configuration refused, until one is accepted (None: the running one is the
        # last one offered).
        self.config_error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; never exits because the broker is unreachable.

        Raises ``AgentFailed`` when a task it cannot run without kept dying (systemd then
        starts the agent afresh)."""
        self._loop = asyncio.get_running_loop()
        self._report_recovery()
        # The site file loaded at start is valid: a refusal from before the restart is over.
        self._config_alarm(Transition.CLEARED, f"configuration {self.config.config_hash} loaded")
        sink = _Sink(self.outbox, self.clock_synced)
        initial = self.outbox.active_alarms()
        sensing = SensingService(
            config=self.config,
            sink=sink,
            clock=self.clock,
            initial_alarms=initial,
        )
        supervisor = Supervisor(
            clock=self.clock,
            on_failure=self._task_failed,
            on_recovery=self._task_recovered,
            policy=self._policy,
        )
        self.supervisor = supervisor
        supervisor.inherit_failing(
            a.point
            for a in initial
            if a.equipment_id == AGENT_EQUIPMENT and a.alarm_type == TASK_FAILED
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
            tasks=supervisor.starter(),
            clock_offset=self.clock_watch.offset,
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
            watchdog = Watchdog.from_environment(problems=supervisor.problems)
            # The watchdog last: READY=1 once the rest runs, STOPPING=1 first on the way out.
            async with supervisor, link, sensing, watchdog:
                self._start(supervisor, "storage", self._watch_storage)
                self._start(supervisor, "config-watch", self._watch_config, essential=False)
                self._start(supervisor, "clock-watch", self._watch_clock, essential=False)
                self._start(supervisor, "status-socket", self._serve_status, essential=False)
                supervisor.watch_group(self._pollers, self._restart_poller)
                with _sighup(self._loop, self._reload_from_file):
                    await _first(stop.wait(), supervisor.failed.wait())
        finally:
            self.outbox.close()
        if supervisor.fatal is not None:
            raise AgentFailed(supervisor.fatal)

    def snapshot(self) -> dict[str, Any]:
        """Everything a technician's check shows, as of now."""
        link = self._link
        supervisor = self.supervisor
        return {
            "agent_id": self.config.agent_id,
            "site_id": self.config.site_id,
            "boot": self.boot,
            "agent_version": AGENT_VERSION,
            "config_hash": self.config.config_hash,
            "config_error": self.config_error,
            "clock_synced": self.clock_synced(),
            "clock_offset_s": self.clock_watch.offset_s(),
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
                    "unknown": p.unknown,
                }
                for p in (self.sensing.live_values() if self.sensing else [])
            ],
            "listeners": [
                h.model_dump(mode="json")
                for h in (self.sensing.listener_health() if self.sensing else [])
            ],
            "active_alarms": [a.model_dump(mode="json") for a in self.outbox.active_alarms()],
            # What the storage_fault alarm says now (None: clear).
            "storage_fault": self.outbox.storage_alarm,
            "tasks": supervisor.status() if supervisor else [],
            # Why systemd's watchdog is not fed now (empty: it is).
            "task_problems": supervisor.problems() if supervisor else [],
        }

    # -- supervised tasks ----------------------------------------------------------------

    def _start(
        self,
        supervisor: Supervisor,
        name: str,
        factory: TaskFactory,
        *,
        essential: bool = True,
    ) -> None:
        # Tasks of the runtime itself: fatal when essential (the process is restarted).
        self._handles[name] = supervisor.start(
            name,
            factory,
            stall_after_s=STALL_AFTER_S,
            essential=essential,
            fatal=essential,
        )

    def _beat(self, name: str) -> None:
        handle = self._handles.get(name)
        if handle is not None:
            handle.beat()

    async def _watch_storage(self) -> None:
        """Free space, probe writes, and recovery once the disk takes writes again."""
        while True:
            self._beat("storage")
            recovery = self.outbox.check()
            if recovery is not None:
                if recovery.lost and self._link is not None:
                    # What the lost events would have told, the collector learns from a
                    # birth: the full set of alarms active now.
                    self._link.publish_birth()
                self._wake()
            await asyncio.sleep(STORAGE_CHECK_S)

    async def _serve_status(self) -> None:
        """The socket ``agent check`` reads; made again if it goes away (a tmp cleaner)."""
        path = status_socket_path(self.config.outbox.path)
        async with StatusServer(path, self.snapshot) as server:
            while True:
                self._beat("status-socket")
                await asyncio.sleep(5.0)
                if server.serving and not path.exists():
                    raise RuntimeError(f"status socket {path} was removed")

    def _pollers(self) -> dict[str, Watched]:
        sensing = self.sensing
        if sensing is None:
            return {}
        devices = {d.id: d for d in self.config.devices}
        return {
            f"device-{device_id}": Watched(
                task=task, progress=polls, stall_after_s=_poll_stall_s(devices.get(device_id))
            )
            for device_id, (task, polls) in sensing.pollers().items()
        }

    async def _restart_poller(self, name: str) -> None:
        if self.sensing is not None:
            await self.sensing.restart_device(name.removeprefix("device-"))

    def _task_failed(self, failure: TaskFailure) -> None:
        """A supervised task died: a state event, and the agent alarm when it starts failing."""
        if not (failure.first or failure.restart_in_s is None):
            return  # still failing: logged, counted in agent check, the alarm is raised
        synced = self.clock_synced()
        self.outbox.append_state(
            name="task_failed",
            detail={
                "task": failure.task,
                "error": failure.error[:500],
                "deaths": failure.deaths,
                "restart_in_s": failure.restart_in_s,
            },
            clock_synced=synced,
        )
        then = (
            "the agent exits to be restarted"
            if failure.restart_in_s is None
            else f"restarted in {failure.restart_in_s:.0f} s"
        )
        self.outbox.append_alarm(
            AlarmTransition(
                equipment_id=AGENT_EQUIPMENT,
                point=failure.task,
                alarm_type=TASK_FAILED,
                transition=Transition.RAISED,
                severity=Severity.MAJOR,
                value=None,
                reason=f"agent task {failure.task} died ({failure.error}); {then}"[:500],
                ts=self.clock.now(),
            ),
            clock_synced=synced,
        )
        self._wake()

    def _task_recovered(self, name: str) -> None:
        self.outbox.append_alarm(
            AlarmTransition(
                equipment_id=AGENT_EQUIPMENT,
                point=name,
                alarm_type=TASK_FAILED,
                transition=Transition.CLEARED,
                severity=Severity.MAJOR,
                value=None,
                reason=f"agent task {name} runs again",
                ts=self.clock.now(),
            ),
            clock_synced=self.clock_synced(),
        )
        self._wake()

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

    async def _watch_clock(self) -> None:
        """Steps are noticed by every reader of the clock; this also catches them when
        nothing is recorded, and raises or clears ``clock_skew``."""
        while True:
            self._beat("clock-watch")
            await asyncio.sleep(CHECK_EVERY_S)
            transition = self.clock_watch.skew_transition()
            if transition is not None:
                self.outbox.append_alarm(transition, clock_synced=self.clock_synced())
                self._wake()

    async def _watch_config(self) -> None:
        while True:
            self._beat("config-watch")
            await asyncio.sleep(CONFIG_POLL_S)
            mtime = _mtime(self.config_path)
            if mtime != self._config_mtime:
                self._config_mtime = mtime
                await self._apply(lambda: load_site(self.config_path), origin="file change")

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._spawned_done)

    def _spawned_done(self, task: asyncio.Future[None]) -> None:
        """A one-off task (a reload) that failed is logged and reported, never lost."""
        self._background.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        err = task.exception()
        name = task.get_name() if isinstance(task, asyncio.Task) else "background"
        log.error("task %s failed", name, exc_info=err)
        self.outbox.append_state(
            name="task_failed",
            detail={"task": name, "error": f"{type(err).__name__}: {err}"[:500]},
            clock_synced=self.clock_synced(),
        )
        self._wake()

    def _reload_from_file(self) -> None:
        self._spawn(
            self._apply(lambda: load_site(self.config_path), origin="SIGHUP"), name="config-apply"
        )

    def _on_config_threadsafe(self, message: ConfigMessage) -> None:
        def load() -> SiteConfig:
            return load_site_text(
                message.site_yaml,
                source=f"collector push {message.config_hash}",
                profiles=message.profiles_yaml,
            )

        if self._loop is not None:
            self._loop.call_soon_threadsafe(
                lambda: self._spawn(self._apply(load, origin="collector push"), name="config-apply")
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
        """Validate, bind, then swap; any failure keeps the running configuration and is
        reported (log, state event, ``config_error``, the ``config_rejected`` alarm)."""
        # One reload at a time: a SIGHUP during a file change's reload waits its turn.
        async with self._reload_lock:
            try:
                new = load()
                if new.agent_id != self.config.agent_id or new.site_id != self.config.site_id:
                    raise ConfigError(
                        origin, "agent_id/site_id", "cannot change while the agent runs"
                    )
                if new.config_hash == self.config.config_hash:
                    if self.config_error is not None:
                        self._accepted(new, origin=origin, untouched=[])
                    return
                untouched = _needs_restart(self.config, new)
                assert self.sensing is not None
                await self.sensing.reload(new)
            except Exception as err:
                # Not only ConfigError: a port in use, a driver refusing a device. Nothing
                # escapes unlogged, and the running configuration stays.
                self._rejected(err, origin=origin)
                return
            self.config = new.model_copy(
                update={"mqtt": self.config.mqtt, "outbox": self.config.outbox}
            )
            self._accepted(new, origin=origin, untouched=untouched)

    def _rejected(self, err: Exception, *, origin: str) -> None:
        why = str(err) if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        log.error("config from %s rejected, keeping %s: %s", origin, self.config.config_hash, why)
        self.config_error = f"{origin}: {why}"[:2000]
        synced = self.clock_synced()
        self.outbox.append_state(
            name="config_rejected",
            detail={"origin": origin, "error": why[:500]},
            clock_synced=synced,
        )
        self._config_alarm(Transition.RAISED, f"configuration from {origin} rejected: {why}")
        self._wake()

    def _accepted(self, new: SiteConfig, *, origin: str, untouched: list[str]) -> None:
        log.info("config %s applied from %s", new.config_hash, origin)
        self.config_error = None
        self.outbox.append_state(
            name="config_applied",
            detail={"origin": origin, "config_hash": new.config_hash, "needs_restart": untouched},
            clock_synced=self.clock_synced(),
        )
        self._config_alarm(Transition.CLEARED, f"configuration {new.config_hash} applied")
        self._wake()

    def _config_alarm(self, transition: Transition, reason: str) -> None:
        """Raise or clear the agent's ``config_rejected`` alarm, if it is not so already."""
        active = any(
            a.equipment_id == AGENT_EQUIPMENT and a.alarm_type == CONFIG_REJECTED
            for a in self.outbox.active_alarms()
        )
        if active == (transition is Transition.RAISED):
            return
        self.outbox.append_alarm(
            AlarmTransition(
                equipment_id=AGENT_EQUIPMENT,
                point="config",
                alarm_type=CONFIG_REJECTED,
                transition=transition,
                severity=Severity.MINOR,
                value=None,
                reason=reason[:500],
                ts=self.clock.now(),
            ),
            clock_synced=self.clock_synced(),
        )

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


def _check_link_files(config: SiteConfig, config_path: Path) -> None:
    """The broker password and TLS files must be readable at start: the link reads them in
    its network thread, where a missing one would only show as a traceback."""
    mqtt = config.mqtt
    files = {"mqtt.password_file": mqtt.password_file if mqtt.username else None}
    if mqtt.tls is not None:
        files |= {
            "mqtt.tls.ca_file": mqtt.tls.ca_file,
            "mqtt.tls.cert_file": mqtt.tls.cert_file,
            "mqtt.tls.key_file": mqtt.tls.key_file,
        }
    for where, path in files.items():
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as err:
            raise ConfigError(
                str(config_path), where, f"cannot read {path}: {err.strerror or err}"
            ) from err


def _boot(path: Path) -> int:
    """The next boot counter; on a disk that takes no writes, one more than the last one
    (not kept: the agent starts all the same)."""
    try:
        return next_boot(path)
    except OSError as err:
        try:
            last = int(path.read_text().strip() or 0)
        except (OSError, ValueError):
            last = 0
        log.error("boot counter %s cannot be written (%s): boot %d not kept", path, err, last + 1)
        return last + 1


def _poll_stall_s(device: Device | None) -> float | None:
    """How long a device's poller may go without finishing a poll before it counts as stuck:
    generous, since a poll may wait out every timeout and retry, then back off."""
    if device is None:
        return None
    if isinstance(device, GpioDevice):
        return 60.0
    cycle = max(device.poll_s, device.backoff_max_s) + 50 * (device.retries + 1) * device.timeout_s
    return 3 * cycle + 60.0


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of ``waits`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


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
