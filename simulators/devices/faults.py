"""A TCP proxy that injects faults between a client and a server.

Put in front of a Modbus device it makes the device silent, slow or garbled without touching
the server; put between an agent and the broker it drops the agent's link. Protocol-agnostic on
purpose: the fault is on the wire, where a real one would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from enum import StrEnum


class Fault(StrEnum):
    """What the proxy does to traffic."""

    NONE = "none"  # forward both ways
    SILENT = "silent"  # accept and read requests, never answer
    GARBAGE = "garbage"  # answer every request with random bytes
    SLOW = "slow"  # forward answers after a delay
    DOWN = "down"  # close every connection and refuse new ones


class FaultyProxy:
    """A TCP proxy running on its own event loop thread; ``fault`` can change at any time."""

    def __init__(self, *, target: tuple[str, int], slow_s: float = 3.0) -> None:
        self.target = target
        self.slow_s = slow_s
        self.fault = Fault.NONE
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # Connection handlers still running: stop() must end them before closing the loop, or
        # their transports are left for the garbage collector (a ResourceWarning in tests).
        self._handlers: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Listen on a free loopback port (``self.port``)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def set_fault(self, fault: Fault | str) -> None:
        """Change the fault; DOWN also cuts the connections already open."""
        self.fault = Fault(fault)
        if self.fault is Fault.DOWN:
            asyncio.run_coroutine_threadsafe(self._cut_all(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Close everything and stop the loop thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            await self._relay(client_r, client_w)
        finally:
            if handler is not None:
                self._handlers.discard(handler)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.fault is Fault.DOWN:
            await self._shut(client_w)
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            await self._shut(client_w)  # the server behind is gone: so is the device
            return
        self._writers.update((client_w, server_w))
        upstream = asyncio.create_task(self._pump(client_r, server_w, answers=False, peer=client_w))
        downstream = asyncio.create_task(self._pump(server_r, client_w, answers=True, peer=None))
        try:
            await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (upstream, downstream):
                task.cancel()
            await asyncio.gather(upstream, downstream, return_exceptions=True)
            for writer in (client_w, server_w):
                self._writers.discard(writer)
                await self._shut(writer)

    @staticmethod
    async def _shut(writer: asyncio.StreamWriter) -> None:
        # Wait for the transport to be really closed: a transport left "closing" when the loop
        # stops keeps its socket and is reported unclosed by the garbage collector.
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        answers: bool,
        peer: asyncio.StreamWriter | None,
    ) -> None:
        while data := await reader.read(65536):
            if self.fault is Fault.DOWN:
                return
            if answers and self.fault is Fault.SILENT:
                continue
            if answers and self.fault is Fault.SLOW:
                await asyncio.sleep(self.slow_s)
            if not answers and self.fault is Fault.GARBAGE and peer is not None:
                # The request never reaches the server; the client gets noise of a plausible size.
                peer.write(os.urandom(max(9, len(data))))
                await peer.drain()
                continue
            writer.write(data)
            await writer.drain()

    async def _cut_all(self) -> None:
        for writer in list(self._writers):
            transport_socket = writer.get_extra_info("socket")
            if isinstance(transport_socket, socket.socket):
                # RST rather than FIN: a cut cable does not say goodbye.
                transport_socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            writer.close()
        self._writers.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()
        # Cut connections end their handlers by themselves; cancelling one instead would make
        # asyncio's stream callback log the cancellation as an error.
        if self._handlers:
            _, stuck = await asyncio.wait(list(self._handlers), timeout=5)
            for handler in stuck:
                handler.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        # One more turn so the connection-lost callbacks of the cut transports run.
        await asyncio.sleep(0)
