"""Three collector instances on one shared subscription and one PostgreSQL, killed and restarted
at random under load, end with exactly the alarms, tickets and notifications one instance
produces for the same edge history.

mosquitto dispatches a shared subscription round-robin and keeps routing a share of it to a
killed member until its session expires: the agents' re-send of what is unacked is what makes
that safe, and the per-stream lock is what keeps every agent's events in order whichever
instance receives them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from clocks import SystemClock
from protocol import Severity, Transition
from simulators.broker import MosquittoProcess
from simulators.cluster import CollectorCluster
from simulators.fleet.agent import FleetStats, VirtualAgent
from simulators.fleet.paho_asyncio import LoopDriver
from tests.conftest import budget

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.mqtt,
    pytest.mark.timeout(budget(short=300, long=3600)),
]

SITES = budget(short=24, long=150)
KILLS = budget(short=4, long=40)
# At least the storm rule's min_sites (rules/alarm_rules.yaml): one generic incident.
STORM_SITES = 12
MINOR, MAJOR, CRITICAL = Severity.MINOR, Severity.MAJOR, Severity.CRITICAL
RAISED, CLEARED = Transition.RAISED, Transition.CLEARED


@dataclass(frozen=True)
class Step:
    """One alarm transition at every site ``where`` selects."""

    where: Callable[[int], bool]
    equipment_id: str
    point: str
    alarm_type: str
    transition: Transition
    severity: Severity


def _history() -> list[Step]:
    storm = lambda i: i < STORM_SITES  # noqa: E731
    return [
        Step(lambda i: True, "door-1", "door", "door_open", RAISED, MAJOR),
        Step(lambda i: i % 3 == 0, "env-1", "temperature", "temp_high", RAISED, MINOR),
        Step(storm, "power-1", "mains", "mains_lost", RAISED, MAJOR),
        # Symptoms of the mains cut at the same sites: suppressed, not ticketed.
        Step(storm, "power-1", "battery", "on_battery", RAISED, MAJOR),
        Step(lambda i: True, "door-1", "door", "door_open", CLEARED, MAJOR),
        # Severity changes in place: still one alarm, one ticket.
        Step(lambda i: i % 3 == 0, "env-1", "temperature", "temp_high", RAISED, CRITICAL),
        Step(lambda i: i % 5 == 0, "fire-1", "fire", "fire", RAISED, CRITICAL),
        Step(storm, "power-1", "mains", "mains_lost", CLEARED, MAJOR),
        Step(storm, "power-1", "battery", "on_battery", CLEARED, MAJOR),
        # A re-raise before closure: the same ticket, as a recurrence.
        Step(lambda i: i % 4 == 0, "door-1", "door", "door_open", RAISED, MAJOR),
    ]


def _site(i: int) -> str:
    return f"PM-SCALE-{i:03d}"


class _Webhook:
    """The client's webhook: counts deliveries by Idempotency-Key."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.keys[self.headers.get("Idempotency-Key", "")] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[_Webhook]:
    hook = _Webhook()
    yield hook
    hook.close()


def _inventory(folder: Path, webhook_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scale.yaml").write_text(
        yaml.safe_dump(
            {
                "sites": [
                    {"site_id": _site(i), "kind": "pm", "region": "Bretagne"} for i in range(SITES)
                ],
                "clients": [
                    {"client_id": "op-scale", "name": "Scale", "notify_webhook": webhook_url}
                ],
                "services": [
                    {"client_id": "op-scale", "site_id": _site(i), "hosting_ref": f"HEB{i:05d}"}
                    for i in range(SITES)
                ],
                "agents": [
                    {"agent_id": f"scale-{i:03d}", "site_id": _site(i)} for i in range(SITES)
                ],
            }
        )
    )
    return folder


async def _play(broker_port: int, *, chaos: Callable[[], None] | None) -> list[VirtualAgent]:
    """Connect one virtual agent per site, play the history, re-send until all is acked."""
    loop = asyncio.get_running_loop()
    driver = LoopDriver(loop)
    stats = FleetStats()
    clock = SystemClock()
    agents = [
        VirtualAgent(
            agent_id=f"scale-{i:03d}",
            site_id=_site(i),
            clock=clock,
            stats=stats,
            attach=driver.attach,
        )
        for i in range(SITES)
    ]
    misc = asyncio.create_task(driver.misc_loop(0.5))
    try:
        for agent in agents:
            agent.connect("127.0.0.1", broker_port)
        await _until(lambda: all(a.connected for a in agents), what="agents connected")
        chaos_task = asyncio.create_task(asyncio.to_thread(chaos)) if chaos else None
        for step in _history():
            for i, agent in enumerate(agents):
                if step.where(i):
                    agent.alarm(
                        equipment_id=step.equipment_id,
                        point=step.point,
                        alarm_type=step.alarm_type,
                        transition=step.transition,
                        severity=step.severity,
                    )
                    agent.telemetry(20.0 + i)
            await asyncio.sleep(0.6)
        if chaos_task is not None:
            await chaos_task

        async def resend() -> None:
            while True:
                await asyncio.sleep(2.0)
                for agent in agents:
                    agent.resend(older_than_s=2.0)

        resender = asyncio.create_task(resend())
        try:
            await _until(lambda: all(a.pending == 0 for a in agents), what="every message acked")
        finally:
            resender.cancel()
        return agents
    finally:
        for agent in agents:
            agent.client.disconnect()
        misc.cancel()


async def _until(probe: Callable[[], bool], *, what: str, timeout_s: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.2)


def _wait_sql(db_url: str, sql: str, *, what: str, timeout_s: float = 60.0) -> None:
    engine = sa.create_engine(db_url)
    try:
        deadline = time.monotonic() + timeout_s
        with engine.connect() as db:
            while not db.execute(sa.text(sql)).scalar():
                db.rollback()
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
                time.sleep(0.3)
    finally:
        engine.dispose()


# A generic incident cancelled into another once two storm groups proved one storm: it exists
# only where the raise between them was applied late, so by nature in some orders and not others.
# The NOC's view is the same either way (one live incident over every site); left out here.
_MERGED_INCIDENT = (
    "(t.kind = 'generic_incident' AND t.state = 'cancelled' AND t.parent_ticket_id IS NOT NULL)"
)


def _outcome(db_url: str) -> dict[str, Any]:
    """What the NOC sees, by identity (never by surrogate ids or references)."""
    engine = sa.create_engine(db_url)
    with engine.connect() as db:
        alarms = sorted(
            tuple(r)
            for r in db.execute(
                sa.text(
                    "SELECT site_id, equipment_id, point, alarm_type, state, severity, count,"
                    " flapping, suppressed_by IS NOT NULL, storm_id IS NOT NULL FROM alarms"
                )
            )
        )
        tickets = sorted(
            tuple(r)
            for r in db.execute(
                sa.text(
                    "SELECT coalesce(t.alarm_identity, t.kind), t.kind, t.state, t.criticality,"
                    " t.escalation_level, t.recurrences, t.contract_id,"
                    " coalesce(p.kind, ''), t.return_to_nominal_at IS NOT NULL"
                    " FROM tickets t LEFT JOIN tickets p ON p.id = t.parent_ticket_id"
                    f" WHERE NOT {_MERGED_INCIDENT}"
                )
            )
        )
        notifications = sorted(
            tuple(r)
            for r in db.execute(
                sa.text(
                    "SELECT coalesce(t.alarm_identity, t.kind), n.event, n.channel, n.recipient,"
                    " n.status FROM notifications n JOIN tickets t ON t.ref = n.ticket_ref"
                    f" WHERE NOT {_MERGED_INCIDENT}"
                )
            )
        )
        keys = [r[0] for r in db.execute(sa.text("SELECT key FROM notifications"))]
        streams = [
            tuple(r)
            for r in db.execute(
                sa.text(
                    "SELECT s.agent_id, s.applied_through, count(e.seq), count(DISTINCT e.seq)"
                    " FROM streams s LEFT JOIN inbound_events e"
                    " ON e.agent_id = s.agent_id AND e.stream_id = s.stream_id"
                    " GROUP BY s.agent_id, s.stream_id, s.applied_through"
                )
            )
        ]
    engine.dispose()
    return {
        "alarms": alarms,
        "tickets": tickets,
        "notifications": notifications,
        "keys": keys,
        "streams": streams,
    }


def _run(
    workdir: Path,
    *,
    db_url: str,
    size: int,
    webhook: _Webhook,
    kills: int,
) -> dict[str, Any]:
    broker = MosquittoProcess(workdir / "broker")
    broker.start()
    cluster = CollectorCluster(
        workdir,
        db_url=db_url,
        broker_port=broker.port,
        size=size,
        inventory_dir=_inventory(workdir / "inventory", webhook.url),
    )
    rng = random.Random(10)
    killed: list[int] = []

    def chaos() -> None:
        # Kills land while the history is being played and acked.
        for _ in range(kills):
            time.sleep(rng.uniform(0.5, 1.5))
            index = rng.randrange(size)
            cluster.kill(index)
            killed.append(index)
            time.sleep(rng.uniform(0.2, 0.8))
            cluster.restart(index)

    try:
        cluster.start()
        agents = asyncio.run(_play(broker.port, chaos=chaos if kills else None))
        cluster.start()  # whatever the last kill left down is back for the deliveries
        _wait_sql(
            db_url,
            "SELECT count(*) > 0 AND bool_and(status = 'sent') FROM notifications",
            what="every notification delivered",
        )
        outcome = _outcome(db_url)
        outcome["committed"] = sorted((a.agent_id, a.events_committed) for a in agents)
        outcome["killed"] = killed
        return outcome
    finally:
        cluster.stop()
        broker.stop()


def test_three_instances_killed_at_random_give_what_one_instance_gives(
    tmp_path: Path, pg_schema: Callable[[], str], webhook: _Webhook
) -> None:
    cluster = _run(tmp_path / "three", db_url=pg_schema(), size=3, webhook=webhook, kills=KILLS)
    assert len(cluster["killed"]) == KILLS
    cluster_deliveries = Counter(webhook.keys)
    webhook.keys.clear()
    single = _run(tmp_path / "one", db_url=pg_schema(), size=1, webhook=webhook, kills=0)

    # Nothing lost, nothing applied twice: every committed seq stored once and applied.
    for outcome in (cluster, single):
        stored = {(agent, applied) for agent, applied, n, distinct in outcome["streams"] if n}
        assert stored == set(outcome["committed"])
        assert all(n == distinct for _, _, n, distinct in outcome["streams"])
    assert cluster["alarms"] == single["alarms"]
    assert cluster["tickets"] == single["tickets"]
    assert cluster["notifications"] == single["notifications"]
    # The history did what it is meant to: one generic incident parent of the storm's tickets.
    kinds = Counter(t[1] for t in single["tickets"])
    assert kinds["generic_incident"] == 1
    assert sum(1 for t in single["tickets"] if t[7] == "generic_incident") == STORM_SITES
    # Each notification reached the webhook; a repeat is possible only for an instance killed
    # between sending and recording, and carries the same Idempotency-Key.
    assert set(cluster_deliveries) == set(cluster["keys"])
    assert sum(cluster_deliveries.values()) - len(cluster_deliveries) <= KILLS
