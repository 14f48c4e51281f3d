"""The agent speaks systemd's notify protocol: READY=1, WATCHDOG=1 pings, STOPPING=1 on SIGTERM;
the pings stop while an essential task is dead or hung, so systemd restarts such an agent."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.runtime.supervisor import SupervisionPolicy, Supervisor
from agent.runtime.watchdog import SystemdNotifier, Watchdog
from clocks import SystemClock
from simulators.broker import free_port
from simulators.processes import ChildProcess, cli_argv


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, Path]]:
    """A Unix datagram socket standing in for systemd's (short path: 107 bytes at most)."""
    path = Path(tempfile.gettempdir()) / f"sw-notify-{uuid.uuid4().hex[:8]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    try:
        yield sock, path
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting, without blocking."""
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(20)


def test_a_real_agent_notifies_ready_pings_and_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, Path]
) -> None:
    sock, path = notify_socket
    site = tmp_path / "site.yaml"
    site.write_text(
        f"agent_id: wd-{uuid.uuid4().hex[:8]}\nsite_id: PM-WD-1\nsite_kind: pm\n"
        f"mqtt: {{host: 127.0.0.1, port: {free_port()}}}\n"  # no broker: READY all the same
        f"outbox: {{path: {tmp_path / 'outbox.db'}}}\n"
    )
    agent = ChildProcess(
        "agent",
        cli_argv("agent", "run", "--config", str(site)),
        log_path=tmp_path / "agent.log",
        env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"},
    )
    agent.start()
    try:
        assert sock.recv(4096) == b"READY=1", agent.tail()
        started = time.monotonic()
        pings = [sock.recv(4096) for _ in range(4)]
        elapsed = time.monotonic() - started
    finally:
        agent.stop()
    assert pings == [b"WATCHDOG=1"] * 4
    assert 0.4 <= elapsed < 5  # every 0.2 s (half of 400 ms): the first at once, 3 more after
    assert agent.returncode == 0
    after = received(sock)
    assert after[-1] == "STOPPING=1"
    assert set(after[:-1]) <= {"WATCHDOG=1"}


async def test_a_blocked_event_loop_stops_the_pings(
    notify_socket: tuple[socket.socket, Path],
) -> None:
    """What gets a hung agent restarted: no ping while its loop is stuck."""
    sock, path = notify_socket
    async with Watchdog(SystemdNotifier(str(path), watchdog_interval_s=0.05)):
        await asyncio.sleep(0.3)
        assert received(sock)[0] == "READY=1"
        time.sleep(0.5)  # noqa: ASYNC251 - a hung loop, on purpose: the pinging task cannot run
        assert received(sock) == []
        await asyncio.sleep(0.3)
        assert received(sock).count("WATCHDOG=1") >= 3
    assert received(sock) == ["STOPPING=1"]


def _supervisor(backoff_s: float) -> Supervisor:
    return Supervisor(
        clock=SystemClock(),
        on_failure=lambda _f: None,
        on_recovery=lambda _n: None,
        policy=SupervisionPolicy(backoff_min_s=backoff_s, healthy_after_s=60),
    )


async def _pings_within(sock: socket.socket, seconds: float) -> int:
    received(sock)
    await asyncio.sleep(seconds)
    return received(sock).count("WATCHDOG=1")


async def test_a_dead_essential_task_stops_the_pings(
    notify_socket: tuple[socket.socket, Path],
) -> None:
    sock, path = notify_socket
    dead = asyncio.Event()

    async def sender() -> None:
        await dead.wait()
        raise RuntimeError("the sender crashed")

    async with _supervisor(backoff_s=3600) as supervisor:
        supervisor.start("link-sender", sender)
        notifier = SystemdNotifier(str(path), watchdog_interval_s=0.05)
        async with Watchdog(notifier, problems=supervisor.problems):
            assert await _pings_within(sock, 0.4) >= 4
            dead.set()
            await asyncio.sleep(0.2)
            assert await _pings_within(sock, 0.6) == 0
            assert supervisor.problems() == ["task link-sender is not running"]


async def test_a_hung_essential_task_stops_the_pings_until_it_is_restarted(
    notify_socket: tuple[socket.socket, Path],
) -> None:
    sock, path = notify_socket
    hang = asyncio.Event()
    runs = 0

    async def sender() -> None:
        nonlocal runs
        runs += 1
        first = runs == 1
        while True:
            if hang.is_set() and first:
                await asyncio.Event().wait()  # alive, stuck (the first run only)
            handle.beat()
            await asyncio.sleep(0.02)

    async with _supervisor(backoff_s=1.0) as supervisor:
        handle = supervisor.start("link-sender", sender, stall_after_s=0.3)
        notifier = SystemdNotifier(str(path), watchdog_interval_s=0.05)
        async with Watchdog(notifier, problems=supervisor.problems):
            assert await _pings_within(sock, 0.4) >= 4
            hang.set()
            await asyncio.sleep(0.5)  # stuck for longer than 0.3 s: no more pings
            assert await _pings_within(sock, 0.5) == 0
            # Cancelled, restarted after the 1 s backoff, beating again: pings resume.
            resumed = [await _pings_within(sock, 0.3) for _ in range(10)]
            assert max(resumed) >= 3, resumed
            assert runs == 2


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": "relative.sock"}])
def test_outside_systemd_nothing_is_sent(env: dict[str, str]) -> None:
    assert SystemdNotifier.from_environment(env) is None


@pytest.mark.parametrize(
    ("env", "address", "interval_s"),
    [
        ({"NOTIFY_SOCKET": "/run/n.sock"}, "/run/n.sock", None),
        ({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "30000000"}, "\0abstract", 15.0),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, "/n", 15.0),
        # the watchdog is another process's (a parent's): notify, but do not ping for it
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, "/n", None),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "soon"}, "/n", None),
    ],
)
def test_what_systemd_asked_for(
    env: dict[str, str], address: str, interval_s: float | None
) -> None:
    notifier = SystemdNotifier.from_environment(env, pid=42)
    assert notifier is not None
    assert (notifier.address, notifier.watchdog_interval_s) == (address, interval_s)
