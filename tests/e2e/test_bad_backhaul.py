"""The real agent behind a bad backhaul.

The agent process runs in its own network namespace and reaches mosquitto only through the
test's userspace relay (``simulators.network``), with the real collector behind the broker.
In turn the link is slowed to 64 kbit/s under a telemetry backlog, black-holed both ways, then
one way and the other, while the door opens and closes. Judged from outside the agent: a spy
at the broker counts every copy of every event (the collector stores each seq once, so its
database cannot), the relay sees when the agent gives a dead connection up, and the
collector's database holds what was stored.

``make test`` scales the broker's answer timeout down to 3 s and leaves the uplink-only loss
out; ``make test-long`` keeps every default of the site file, runs every fault and checks a
half-open link is given up within 30 s.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agent.buffer import Outbox
from agent.events import Sample
from clocks import SystemClock
from simulators.network import DeliverySpy, LinkRelay, NetNamespace, netns_unavailable_reason
from simulators.stack import AgentProcess, Stack
from siteconfig import OutboxSettings
from tests.conftest import DEMO_SITES, budget, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LONG = budget(short=0, long=1) == 1
# The broker's answer timeout (mqtt.answer_timeout_s): the default in make test-long. Scaled
# down, it still leaves room for the second or so a PUBACK waits on the slow link.
ANSWER_TIMEOUT_S = 15.0 if LONG else 3.0
DETECTED_WITHIN_S = 30.0 if LONG else ANSWER_TIMEOUT_S + 2.0
SLOW_LINK_BYTES_S = 8000  # 64 kbit/s
ALARMS_ON_SLOW_LINK = budget(short=6, long=60)
# make test-long checks the goal itself (p99 <= 3 s over 60 alarms, the README figure). With 6
# alarms on a CI machine shared by a second worker, p99 is the slowest alarm (3.07 s seen
# once): make test checks what cannot be load, that alarms overtake the backlog, which alone
# would hold them BACKLOG x ~1.2 kB / 8 kB/s = 15 s.
LATENCY_BOUND_S = 3.0 if LONG else 6.0
# Telemetry buffered during an outage, ~1.2 kB a message: more than the slow phase can carry.
BACKLOG = budget(short=100, long=1000)
TOGGLES_PER_FAULT = budget(short=2, long=6)
# Which directions each fault lets through (up, down).
FAULTS = {"partition": (False, False), "uplink lost": (False, True), "downlink lost": (True, False)}
if not LONG:
    del FAULTS["uplink lost"]
SITE_FILE = DEMO_SITES / "pm-lyon-0101.yaml"


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    with NetNamespace() as ns:
        yield ns


@pytest.fixture
def relay(netns: NetNamespace, stack: Stack) -> Iterator[LinkRelay]:
    with LinkRelay(target=(stack.broker.host, stack.broker.port), listen_host=netns.host_ip) as r:
        yield r


class Door:
    """Opens and closes the site's door; remembers each transition it caused, and when."""

    def __init__(self, stack: Stack, agent: AgentProcess) -> None:
        self._stack, self._agent = stack, agent
        self.open = False
        self.moves: list[tuple[str, float]] = []

    def toggle(self) -> None:
        self.open = not self.open
        self.moves.append(("raised" if self.open else "cleared", time.monotonic()))
        self._stack.set_contact(self._agent.agent_id, "door", alarm=self.open)


def _backlog(stack: Stack, agent_id: str, site_id: str) -> None:
    """What an outage leaves in the outbox: telemetry, ten samples a message."""
    now = datetime.now(UTC)
    samples = [
        Sample(equipment_id="env-1", point=f"p{i}", value=21.5, unit="degC", ts=now)
        for i in range(10)
    ]
    outbox = Outbox.open(
        settings=OutboxSettings(path=stack.agent_dir(agent_id) / "outbox.db"),
        agent_id=agent_id,
        site_id=site_id,
        clock=SystemClock(),
    )
    for _ in range(BACKLOG):
        outbox.append_samples(samples, clock_synced=True)
    outbox.close()


def _pending(outbox_path: Path) -> int:
    """Events and telemetry the agent still holds unacked (read beside the running agent)."""
    conn = sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True)
    try:
        return int(
            conn.execute(
                "SELECT (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM telemetry)"
            ).fetchone()[0]
        )
    except sqlite3.Error:
        return -1
    finally:
        conn.close()


def _settled(agent: AgentProcess, spy: DeliverySpy, events: int) -> Callable[[], bool]:
    return lambda: len(spy.event_copies()) >= events and _pending(agent.outbox_path) == 0


def _live_connection(relay: LinkRelay) -> int:
    live = [i for i, c in enumerate(relay.connections) if c.client_closed_at is None]
    assert len(live) == 1, relay.connections
    return live[0]


def _stored_transitions(stack: Stack, stream_id: str) -> list[tuple[int, str]]:
    engine = sa.create_engine(stack.db_url)
    with engine.connect() as db:
        rows = db.execute(
            sa.text("SELECT seq, payload FROM inbound_events WHERE stream_id=:s ORDER BY seq"),
            {"s": stream_id},
        ).all()
    engine.dispose()
    return [(int(seq), json.loads(payload).get("transition", "")) for seq, payload in rows]


def test_the_agent_loses_nothing_and_duplicates_little_behind_a_bad_backhaul(
    netns: NetNamespace, stack: Stack, relay: LinkRelay
) -> None:
    agent_id, site_id = "pm-lyon-0101", "PM-LYO-0101"
    _backlog(stack, agent_id, site_id)
    spy = DeliverySpy(stack.broker.host, stack.broker.port, agent_id)
    try:
        _run(netns, stack, relay, spy, agent_id)
    finally:
        spy.close()


def _run(
    netns: NetNamespace, stack: Stack, relay: LinkRelay, spy: DeliverySpy, agent_id: str
) -> None:
    def through_the_relay(raw: dict[str, Any]) -> dict[str, Any]:
        raw["mqtt"].update(host=relay.host, port=relay.port)
        if not LONG:
            raw["mqtt"].update(
                answer_timeout_s=ANSWER_TIMEOUT_S, reconnect_min_s=0.3, reconnect_max_s=1.0
            )
        return raw

    # 1. After an outage, a 64 kbit/s link saturated by the telemetry backlog: alarms first.
    relay.set_link(rate_bytes_s=SLOW_LINK_BYTES_S)
    agent = stack.add_agent(SITE_FILE, rewrite=through_the_relay, launcher=netns.wrap([]))
    stack.wait_for_gpio(agent_id)
    wait_for("the agent's birth through the relay", lambda: spy.births >= 1, timeout_s=60)
    time.sleep(1.0)  # the backlog fills the link
    door = Door(stack, agent)
    for _ in range(ALARMS_ON_SLOW_LINK):
        door.toggle()
        time.sleep(0.4)
    wait_for(
        "every alarm on the slow link",
        lambda: len(spy.event_copies()) >= ALARMS_ON_SLOW_LINK,
        timeout_s=120,
    )
    telemetry_then = sum(1 for space, _ in spy.arrived if space == "telemetry")
    latencies = sorted(
        spy.arrived[("event", seq)] - at for seq, (_, at) in enumerate(door.moves, start=1)
    )
    p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
    print(f"slow link: alarm latency p99 {p99:.2f} s, max {latencies[-1]:.2f} s")
    assert p99 <= LATENCY_BOUND_S, latencies
    assert telemetry_then < BACKLOG, "the backlog must saturate the link the whole time"
    relay.set_link()
    wait_for("the backlog delivered", _settled(agent, spy, len(door.moves)), timeout_s=120)

    # 2. Black hole both ways, then one way alone: a half-open link, given up in time.
    detections: dict[str, float] = {}
    for fault, (up, down) in FAULTS.items():
        live = _live_connection(relay)
        births = spy.births
        first_seq = len(door.moves) + 1
        start = time.monotonic()
        relay.set_link(up=up, down=down)
        for _ in range(TOGGLES_PER_FAULT):  # events are waiting from the start
            door.toggle()
            time.sleep(0.3)
        closed = wait_for(
            f"the agent to give the dead link up ({fault})",
            lambda live=live: relay.connections[live].client_closed_at,
            timeout_s=DETECTED_WITHIN_S + 30,
        )
        detections[fault] = closed - start
        relay.set_link()
        wait_for(f"everything acked after the {fault}", _settled(agent, spy, len(door.moves)))
        reconnects = spy.births - births
        copies = spy.event_copies()
        assert reconnects >= 1, fault
        # Each event went out once, plus at most once per reconnect.
        assert all(
            copies[seq] <= 1 + reconnects for seq in range(first_seq, len(door.moves) + 1)
        ), (fault, reconnects, copies)
    print("half-open link given up after", {k: round(v, 1) for k, v in detections.items()})
    assert all(v <= DETECTED_WITHIN_S for v in detections.values()), detections

    # 3. Nothing lost: every door transition stored once by the collector, in order.
    stream_id = _stream_of(agent.outbox_path)
    stored = _stored_transitions(stack, stream_id)
    assert [seq for seq, _ in stored] == list(range(1, len(door.moves) + 1))
    assert [t for _, t in stored] == [move for move, _ in door.moves]


def _stream_of(outbox_path: Path) -> str:
    conn = sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT value FROM meta WHERE key='stream_id'").fetchone()[0])
    finally:
        conn.close()
