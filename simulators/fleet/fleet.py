"""Thousands of virtual agents in one process: steady traffic plus an optional alarm storm."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import statistics
from dataclasses import dataclass, field

from clocks import Clock
from protocol import Severity, Transition
from simulators.fleet.agent import FleetStats, VirtualAgent
from simulators.fleet.paho_asyncio import LoopDriver

log = logging.getLogger(__name__)

# What a regional power cut looks like at one site: five alarms, the first being the cause.
STORM_ALARMS: tuple[tuple[str, str, str, Severity], ...] = (
    ("rectifier-1", "mains", "mains_lost", Severity.MAJOR),
    ("rectifier-1", "battery", "on_battery", Severity.MINOR),
    ("ups-1", "output_source", "on_battery", Severity.MINOR),
    ("env-1", "temperature", "temp_high", Severity.MINOR),
    ("olt-1", "status", "equipment_down", Severity.MAJOR),
)


@dataclass(frozen=True)
class FleetConfig:
    """Size and traffic of a simulated fleet."""

    host: str
    port: int
    agents: int
    id_prefix: str = "fleet"
    msgs_per_agent_per_min: float = 1.0
    # Share of steady messages that are door alarm transitions (the rest is telemetry).
    alarm_share: float = 0.1
    heartbeat_s: float = 60.0
    storm_sites: int = 0
    storm_at_s: float = 10.0
    storm_window_s: float = 60.0
    connect_per_s: float = 3000.0
    resend_after_s: float = 30.0
    seed: int = 1

    def bindings(self) -> dict[str, str]:
        """Each virtual agent's id and the site it speaks for (what its enrolment binds)."""
        return {
            f"{self.id_prefix}-{i:05d}": f"SITE-{self.id_prefix}-{i:05d}".upper()
            for i in range(self.agents)
        }

    def inventory(self) -> dict[str, list[dict[str, str]]]:
        """An inventory file's content enrolling the whole fleet (``collector run
        --inventory``): its sites, and each agent bound to its own."""
        bindings = self.bindings()
        return {
            "sites": [
                {"site_id": site_id, "kind": "pm", "name": site_id, "region": "simulated"}
                for site_id in bindings.values()
            ],
            "agents": [
                {"agent_id": agent_id, "site_id": site_id} for agent_id, site_id in bindings.items()
            ],
        }


@dataclass
class FleetReport:
    """What a fleet run measured."""

    agents_connected: int
    connect_failures: int
    offered: int
    offered_alarms: int
    acked: int
    resent: int
    pending: int
    duration_s: float
    msgs_per_s_offered: float
    storm_msgs_per_s_offered: float
    lag_p50_s: float | None
    lag_p99_s: float | None
    extra: dict[str, float] = field(default_factory=dict)


class Fleet:
    """Runs ``config.agents`` virtual agents from one event loop."""

    def __init__(self, config: FleetConfig, *, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.stats = FleetStats()
        self.agents: list[VirtualAgent] = []
        self._rng = random.Random(config.seed)
        self._storm_offered = 0
        self._storm_duration = 0.0

    async def run(self, *, duration_s: float, drain_s: float = 10.0) -> FleetReport:
        """Connect everyone, send for ``duration_s``, wait up to ``drain_s`` for acks."""
        loop = asyncio.get_running_loop()
        driver = LoopDriver(loop)
        misc = asyncio.create_task(driver.misc_loop(), name="fleet-misc")
        try:
            await self._connect_all(driver)
            start = self.clock.monotonic()
            offered_before = self.stats.offered
            tasks = [asyncio.create_task(self._steady(duration_s), name="fleet-steady")]
            tasks.append(asyncio.create_task(self._heartbeats(duration_s), name="fleet-hb"))
            tasks.append(
                asyncio.create_task(self._resender(duration_s + drain_s), name="fleet-resend")
            )
            if self.config.storm_sites:
                tasks.append(asyncio.create_task(self._storm(), name="fleet-storm"))
            await asyncio.gather(*tasks[:2], *(tasks[3:] if self.config.storm_sites else []))
            elapsed = max(self.clock.monotonic() - start, 1e-9)
            offered = self.stats.offered - offered_before
            deadline = self.clock.monotonic() + drain_s
            while self.clock.monotonic() < deadline and any(a.pending for a in self.agents):
                await asyncio.sleep(0.2)
            tasks[2].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[2]
            return self._report(elapsed, offered)
        finally:
            misc.cancel()
            for agent in self.agents:
                agent.client.disconnect()
            await asyncio.sleep(0.2)

    async def _connect_all(self, driver: LoopDriver) -> None:
        cfg = self.config
        batch = max(1, int(cfg.connect_per_s / 10))
        for i, (agent_id, site_id) in enumerate(cfg.bindings().items()):
            agent = VirtualAgent(
                agent_id=agent_id,
                site_id=site_id,
                clock=self.clock,
                stats=self.stats,
                attach=driver.attach,
            )
            try:
                agent.connect(cfg.host, cfg.port)
            except OSError as err:
                self.stats.connect_failures += 1
                log.warning("virtual agent %s could not connect: %s", agent_id, err)
                continue
            self.agents.append(agent)
            if i % batch == batch - 1:
                await asyncio.sleep(0.1)
        deadline = self.clock.monotonic() + 60
        while self.stats.connected < len(self.agents) and self.clock.monotonic() < deadline:
            await asyncio.sleep(0.1)
        log.info("fleet: %d/%d agents connected", self.stats.connected, cfg.agents)

    async def _steady(self, duration_s: float) -> None:
        cfg = self.config
        rate = cfg.msgs_per_agent_per_min * len(self.agents) / 60.0
        tick = 0.1
        owed = 0.0
        end = self.clock.monotonic() + duration_s
        index = 0
        while self.clock.monotonic() < end and self.agents:
            owed += rate * tick
            while owed >= 1:
                owed -= 1
                agent = self.agents[index % len(self.agents)]
                index += 1
                self._one_message(agent)
            await asyncio.sleep(tick)

    def _one_message(self, agent: VirtualAgent) -> None:
        if self._rng.random() < self.config.alarm_share:
            opened = agent.is_active("door-main", "contact", "door_open")
            agent.alarm(
                equipment_id="door-main",
                point="contact",
                alarm_type="door_open",
                transition=Transition.CLEARED if opened else Transition.RAISED,
                severity=Severity.MAJOR,
            )
        else:
            agent.telemetry(round(20 + 5 * self._rng.random(), 2))

    async def _heartbeats(self, duration_s: float) -> None:
        end = self.clock.monotonic() + duration_s
        while self.clock.monotonic() < end:
            for agent in self.agents:
                agent.heartbeat()
            remaining = end - self.clock.monotonic()
            await asyncio.sleep(max(0.0, min(self.config.heartbeat_s, remaining)))

    async def _resender(self, duration_s: float) -> None:
        end = self.clock.monotonic() + duration_s
        while self.clock.monotonic() < end:
            await asyncio.sleep(min(self.config.resend_after_s / 3, 1.0))
            for agent in self.agents:
                agent.resend(older_than_s=self.config.resend_after_s)

    async def _storm(self) -> None:
        cfg = self.config
        await asyncio.sleep(cfg.storm_at_s)
        sites = self.agents[: cfg.storm_sites]
        # Every site's five alarms land at a random moment inside the storm window.
        plan = sorted(
            (self._rng.uniform(0, cfg.storm_window_s), i, k)
            for i in range(len(sites))
            for k in range(len(STORM_ALARMS))
        )
        start = self.clock.monotonic()
        before = self.stats.offered
        for at, i, k in plan:
            delay = at - (self.clock.monotonic() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            equipment, point, alarm_type, severity = STORM_ALARMS[k]
            sites[i].alarm(
                equipment_id=equipment,
                point=point,
                alarm_type=alarm_type,
                transition=Transition.RAISED,
                severity=severity,
            )
        self._storm_duration = max(self.clock.monotonic() - start, 1e-9)
        self._storm_offered = self.stats.offered - before

    def _report(self, elapsed: float, offered: int) -> FleetReport:
        lags = sorted(self.stats.lags_s)
        return FleetReport(
            agents_connected=self.stats.connected,
            connect_failures=self.stats.connect_failures,
            offered=self.stats.offered,
            offered_alarms=self.stats.offered_alarms,
            acked=self.stats.acked,
            resent=self.stats.resent,
            pending=sum(a.pending for a in self.agents),
            duration_s=round(elapsed, 2),
            msgs_per_s_offered=round(offered / elapsed, 1),
            storm_msgs_per_s_offered=round(self._storm_offered / self._storm_duration, 1)
            if self._storm_duration
            else 0.0,
            lag_p50_s=round(statistics.median(lags), 3) if lags else None,
            lag_p99_s=round(lags[int(0.99 * (len(lags) - 1))], 3) if lags else None,
        )
