"""A userspace TCP relay standing for a shelter's backhaul, with the faults of a bad link.

Why a relay and not the kernel: this machine has no ``sch_netem``. A TCP relay cannot lose
single packets without corrupting the byte stream, so it does what TCP makes of a bad path:

- a direction that is **held** (a partition holds both, one-way loss one) delivers nothing and
  says nothing: no RST, no FIN. What was sent waits, as TCP's retransmissions would, and goes
  through once the link heals if the connection still exists. A connection opened meanwhile
  reaches the server only then (its SYN would not have got through), and never if the client
  gave up first. This is the half-open link: the client's socket stays "connected".
- a **rate** (64 kbit/s is 8,000 bytes/s) forwards that many bytes a second per direction,
  shared by every connection, queueing what arrives faster up to ``buffer_bytes`` a direction
  (a modem's queue) and then pushing back (TCP's window). Bytes a sender has written wait in
  that queue: what is in front of an alarm delays it.
- ``cut()`` resets every connection (a router reboot): the client sees an error at once.

Each connection is recorded (``connections``): when it opened, when it reached the server, and
when the client closed it, which is how a test sees the client notice a dead link.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

# A rate-limited direction forwards in slices of this many seconds' worth of bytes.
SLICE_S = 0.05
READ_BYTES = 65536


class Direction(StrEnum):
    """Which way bytes travel."""

    UP = "up"  # client -> server (the agent's publishes)
    DOWN = "down"  # server -> client (PUBACKs, acks)


@dataclass
class ConnectionRecord:
    """What the relay saw of one client connection (``time.monotonic()`` instants)."""

    opened_at: float
    upstream_at: float | None = None
    client_closed_at: float | None = None
    client_sent: int = 0  # bytes the client wrote, whether they got through or not
    bytes_up: int = 0  # bytes delivered to the server
    bytes_down: int = 0  # bytes delivered to the client


class _Pipe:
    """One direction of one connection: read from one side into a bounded queue, forwarded to
    the other when the direction is open."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queue = bytearray()
        self.eof = False
        self.data = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    async def fill_from(
        self, reader: asyncio.StreamReader, on_chunk: Callable[[int], None] | None = None
    ) -> None:
        """Read until EOF (or a reset), never holding more than ``limit`` bytes."""
        while True:
            while len(self.queue) >= self.limit:
                self.room.clear()
                await self.room.wait()
            try:
                chunk = await reader.read(READ_BYTES)
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                self.data.set()
                return
            self.queue += chunk
            self.data.set()
            if on_chunk is not None:
                on_chunk(len(chunk))

    def take(self, size: int | None) -> bytes:
        """Up to ``size`` bytes from the front (everything when None)."""
        end = len(self.queue) if size is None else size
        chunk = bytes(self.queue[:end])
        del self.queue[:end]
        self.room.set()
        return chunk


class LinkRelay:
    """The relay, on its own event-loop thread; the link's state can change at any time."""

    def __init__(
        self,
        *,
        target: tuple[str, int],
        listen_host: str = "127.0.0.1",
        buffer_bytes: int = 64 * 1024,
    ) -> None:
        self.target = target
        self.host = listen_host
        self.port = 0
        self.buffer_bytes = buffer_bytes
        self._rate: float | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: dict[Direction, asyncio.Event] = {}
        # Virtual time at which each direction may send its next byte: one link, one rate.
        self._next_at = {Direction.UP: 0.0, Direction.DOWN: 0.0}
        self._records: list[ConnectionRecord] = []
        self._records_lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    # -- control (any thread) -------------------------------------------------------------

    def start(self) -> None:
        """Listen on a free port of ``listen_host`` (``self.port``)."""
        self._thread.start()
        self._run(self._listen())

    def set_link(
        self, *, up: bool = True, down: bool = True, rate_bytes_s: float | None = None
    ) -> None:
        """What the link lets through: each direction open or held, at a rate or unlimited."""
        self._run(self._set(up=up, down=down, rate=rate_bytes_s))

    def partition(self) -> None:
        """A black hole both ways (the rate is kept for when it heals)."""
        self.set_link(up=False, down=False, rate_bytes_s=self._rate)

    def heal(self) -> None:
        """Both directions open again (the rate is kept)."""
        self.set_link(rate_bytes_s=self._rate)

    def cut(self) -> None:
        """Reset every open connection, as a router reboot does."""
        self._run(self._cut_all())

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Every connection so far, oldest first (copies)."""
        with self._records_lock:
            return [replace(r) for r in self._records]

    def stop(self) -> None:
        """Close everything and stop the loop thread."""
        if not self._thread.is_alive():
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> LinkRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    # -- the loop's side -----------------------------------------------------------------

    async def _listen(self) -> None:
        self._open = {d: asyncio.Event() for d in Direction}
        for event in self._open.values():
            event.set()
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _set(self, *, up: bool, down: bool, rate: float | None) -> None:
        self._rate = rate
        for direction, is_open in ((Direction.UP, up), (Direction.DOWN, down)):
            if is_open:
                self._open[direction].set()
            else:
                self._open[direction].clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        record = ConnectionRecord(opened_at=time.monotonic())
        with self._records_lock:
            self._records.append(record)
        self._writers.add(client_w)
        up, down = _Pipe(self.buffer_bytes), _Pipe(self.buffer_bytes)
        tasks: list[asyncio.Task[None]] = []

        def counted(size: int) -> None:
            record.client_sent += size

        async def client_side() -> None:
            await up.fill_from(client_r, counted)
            record.client_closed_at = time.monotonic()

        async def server_side() -> None:
            server = await self._connect_upstream(up, record)
            if server is None:
                return
            server_r, server_w = server
            try:
                reader = asyncio.create_task(down.fill_from(server_r))
                tasks.append(reader)
                tasks.append(
                    asyncio.create_task(self._forward(down, client_w, Direction.DOWN, record))
                )
                await self._forward(up, server_w, Direction.UP, record)
                await reader
            finally:
                self._writers.discard(server_w)
                await _shut(server_w)

        try:
            tasks += [asyncio.create_task(client_side()), asyncio.create_task(server_side())]
            while tasks:
                done = [t for t in tasks if t.done()]
                for task in done:
                    tasks.remove(task)
                    task.result()  # a reset in one pump ends the connection (below)
                if not done:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._writers.discard(client_w)
            await _shut(client_w)
            self._handlers.discard(handler)

    async def _connect_upstream(
        self, up: _Pipe, record: ConnectionRecord
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Reach the server once the way up is open; None if the client gave up before."""
        while not self._open[Direction.UP].is_set():
            if up.eof:
                return None  # its SYN never got through: the server never hears of it
            await _first(self._open[Direction.UP].wait(), up.data.wait())
            up.data.clear()
        if up.eof and not up.queue:
            return None
        server_r, server_w = await asyncio.open_connection(*self.target)
        self._writers.add(server_w)
        record.upstream_at = time.monotonic()
        return server_r, server_w

    async def _forward(
        self,
        pipe: _Pipe,
        writer: asyncio.StreamWriter,
        direction: Direction,
        record: ConnectionRecord,
    ) -> None:
        """Forward the pipe to ``writer`` while the direction is open, at the link's rate."""
        while True:
            await self._open[direction].wait()
            if not pipe.queue:
                if pipe.eof:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                pipe.data.clear()
                await pipe.data.wait()
                continue
            rate = self._rate
            chunk = pipe.take(None if rate is None else max(1, int(rate * SLICE_S)))
            writer.write(chunk)
            await writer.drain()
            if direction is Direction.UP:
                record.bytes_up += len(chunk)
            else:
                record.bytes_down += len(chunk)
            if rate is not None:
                now = time.monotonic()
                self._next_at[direction] = max(self._next_at[direction], now) + len(chunk) / rate
                await asyncio.sleep(self._next_at[direction] - now)

    async def _cut_all(self) -> None:
        for writer in list(self._writers):
            # asyncio hands out a TransportSocket, which still sets options.
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # RST rather than FIN: a rebooted router does not say goodbye. A transport
                # already closing has let go of its socket (EBADF): it is gone already.
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET,
                        socket.SO_LINGER,
                        b"\x01\x00\x00\x00\x00\x00\x00\x00",
                    )
            writer.close()
        self._writers.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for event in self._open.values():
            event.set()  # held pumps must see their sockets close
        await self._cut_all()
        if self._handlers:
            _, stuck = await asyncio.wait(list(self._handlers), timeout=5)
            for handler in stuck:
                handler.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.sleep(0)


async def _first(*waits: object) -> None:
    """Wait until the first of several awaitables completes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _shut(writer: asyncio.StreamWriter) -> None:
    # Wait until the transport is really closed, or the garbage collector reports it unclosed.
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()
