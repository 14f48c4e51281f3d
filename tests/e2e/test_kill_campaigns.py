"""Jepsen-style set checks: every alarm the agent committed reaches the collector exactly once,
in sequence order, whatever is killed with -9 while alarms flow.

Short counts run in ``make test``; ``make test-long`` runs the counts of issue 4.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from simulators.gpio import GpioDriver, GpioDriverError
from simulators.stack import AgentProcess, Stack
from tests.conftest import budget
from tests.e2e.test_walking_skeleton import wait_for

FAST_SITE = Path(__file__).resolve().parent / "fixtures" / "fast-site.yaml"
# The full counts of make test-long take minutes: the per-test timeout grows with them.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(budget(short=120, long=1800))]


class DoorToggler:
    """Flips the door contact every few milliseconds from another thread (the alarm source)."""

    def __init__(self, agent: AgentProcess, period_s: float = 0.02) -> None:
        self._driver = GpioDriver(agent.gpio_socket, timeout_s=1.0)
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.flips = 0

    def __enter__(self) -> DoorToggler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        level = False
        while not self._stop.is_set():
            level = not level
            try:
                self._driver.set(17, level)
                self.flips += 1
            except GpioDriverError:
                pass  # the agent is being killed or restarted
            self._stop.wait(self._period)


@dataclass
class Verdict:
    """What the checker found."""

    committed: int
    stored: list[int]
    applied_through: int
    history_seqs: list[int]
    left_in_outbox: int


def check(stack: Stack, agent: AgentProcess) -> Verdict:
    """Compare the agent's committed events with what the collector stored and applied."""
    conn = sqlite3.connect(agent.outbox_path)
    stream_id = conn.execute("SELECT value FROM meta WHERE key='stream_id'").fetchone()[0]
    committed = int(conn.execute("SELECT value FROM meta WHERE key='event_seq'").fetchone()[0])
    left = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    conn.close()
    engine = sa.create_engine(stack.db_url)
    with engine.connect() as db:
        stored = [
            r[0]
            for r in db.execute(
                sa.text("SELECT seq FROM inbound_events WHERE stream_id = :s ORDER BY seq"),
                {"s": stream_id},
            )
        ]
        applied = db.execute(
            sa.text("SELECT applied_through FROM streams WHERE stream_id = :s"), {"s": stream_id}
        ).scalar_one()
        history = [
            r[0]
            for r in db.execute(
                sa.text("SELECT seq FROM alarm_history WHERE seq IS NOT NULL ORDER BY id")
            )
        ]
    engine.dispose()
    return Verdict(committed, stored, applied, history, left)


def assert_exactly_once_in_order(verdict: Verdict) -> None:
    """The set check: 1..N stored once each, all applied, history in seq order, outbox empty."""
    assert verdict.committed >= 100, "the campaign produced too little traffic to prove anything"
    assert verdict.stored == list(range(1, verdict.committed + 1))
    assert verdict.applied_through == verdict.committed
    assert verdict.history_seqs == sorted(verdict.history_seqs)
    assert len(verdict.history_seqs) == len(set(verdict.history_seqs))
    assert verdict.left_in_outbox == 0


def drain(stack: Stack, agent: AgentProcess, *, timeout_s: float = 90) -> None:
    """Let everything settle, then stop the agent cleanly so its outbox can be read."""

    def settled() -> bool:
        conn = sqlite3.connect(agent.outbox_path)
        try:
            return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
        except sqlite3.Error:
            return False
        finally:
            conn.close()

    wait_for("the outbox to drain", settled, timeout_s=timeout_s)
    agent.process.stop()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[Stack, AgentProcess]]:
    stack = Stack(tmp_path / "stack")
    stack.broker.start()
    stack.noc_token = stack.create_token(name="noc", role="noc")
    stack.start_collector()
    agent = stack.add_agent(FAST_SITE)
    stack.wait_for_gpio(agent.agent_id)
    try:
        yield stack, agent
    finally:
        stack.stop()


def test_agent_kill_9_loses_and_duplicates_nothing(chain: tuple[Stack, AgentProcess]) -> None:
    stack, agent = chain
    kills = budget(short=20, long=200)
    rng = random.Random(4)
    with DoorToggler(agent):
        for _ in range(kills):
            time.sleep(rng.uniform(0.8, 2.0))
            agent.process.kill()
            agent.process.start()
            stack.wait_for_gpio(agent.agent_id)
        time.sleep(1)
    drain(stack, agent)
    assert_exactly_once_in_order(check(stack, agent))


def test_broker_kill_9_loses_and_duplicates_nothing(chain: tuple[Stack, AgentProcess]) -> None:
    stack, agent = chain
    kills = budget(short=5, long=50)
    rng = random.Random(5)
    with DoorToggler(agent):
        for _ in range(kills):
            time.sleep(rng.uniform(1.0, 3.0))
            stack.broker.kill()
            time.sleep(rng.uniform(0.1, 1.0))
            stack.broker.start()
        time.sleep(2)
    drain(stack, agent)
    assert_exactly_once_in_order(check(stack, agent))


def test_collector_kill_9_even_between_commit_and_ack(
    chain: tuple[Stack, AgentProcess],
) -> None:
    stack, agent = chain
    kills = budget(short=5, long=50)
    rng = random.Random(6)
    # Half the restarts come with a fault that exits right after a commit, before its ack;
    # such a collector may well die again before answering, so it is not waited for.
    with DoorToggler(agent):
        for i in range(kills):
            time.sleep(rng.uniform(1.0, 3.0))
            stack.collector.kill()
            faulty = i % 2 == 1
            stack.collector.env["SHELTERWATCH_FAULT_EXIT_AFTER_COMMIT"] = "0.2" if faulty else ""
            if faulty:
                stack.collector.start()
            else:
                stack.start_collector()
        time.sleep(2)
        stack.collector.kill()
        stack.collector.env["SHELTERWATCH_FAULT_EXIT_AFTER_COMMIT"] = ""
        stack.start_collector()
    drain(stack, agent)
    assert_exactly_once_in_order(check(stack, agent))
