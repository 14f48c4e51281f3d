"""Drive many paho clients from one asyncio loop (paho's external-loop mode).

``loop_start()`` costs a thread and three descriptors per client; here each client costs
exactly its TCP socket, so one process can hold thousands of MQTT connections.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import paho.mqtt.client as mqtt


class LoopDriver:
    """Registers every attached client's socket with the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._clients: list[mqtt.Client] = []

    def attach(self, client: mqtt.Client) -> None:
        """Let the event loop drive ``client``'s network I/O."""
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._clients.append(client)

    def detach(self, client: mqtt.Client) -> None:
        """Stop driving ``client``."""
        if client in self._clients:
            self._clients.remove(client)

    async def misc_loop(self, period_s: float = 1.0) -> None:
        """Keepalive pings and retries of every client, forever."""
        while True:
            for client in list(self._clients):
                client.loop_misc()
            await asyncio.sleep(period_s)

    def _on_socket_open(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._loop.add_reader(sock, client.loop_read)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _on_register_write(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._loop.add_writer(sock, client.loop_write)

    def _on_unregister_write(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._loop.remove_writer(sock)
