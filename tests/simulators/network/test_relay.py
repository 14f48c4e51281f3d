"""The link relay does to a byte stream what a bad backhaul does: holds it, slows it, cuts it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from simulators.network import LinkRelay
from tests.conftest import wait_for


class EchoServer:
    """A TCP echo server on loopback that counts the connections reaching it."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.address: tuple[str, int] = self._server.getsockname()
        self.reached = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.reached += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def relay(echo_server: EchoServer) -> Iterator[LinkRelay]:
    with LinkRelay(target=echo_server.address) as proxy:
        yield proxy


def _client(relay: LinkRelay) -> socket.socket:
    return socket.create_connection((relay.host, relay.port), timeout=5)


def _receive(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        chunk = sock.recv(65536)
        assert chunk, "the relay closed the connection"
        got += chunk
    return got


def test_a_rate_limited_link_carries_so_many_bytes_a_second(relay: LinkRelay) -> None:
    relay.set_link(rate_bytes_s=8000)  # 64 kbit/s
    with _client(relay) as sock:
        start = time.monotonic()
        sock.sendall(b"x" * 8000)
        assert _receive(sock, 8000) == b"x" * 8000
        elapsed = time.monotonic() - start
    # Up and down overlap: about one second for 8,000 bytes each way, never a burst.
    assert 0.9 <= elapsed < 2.5


def test_a_partition_holds_bytes_silently_and_delivers_them_when_it_heals(
    relay: LinkRelay,
) -> None:
    with _client(relay) as sock:
        sock.sendall(b"ping")
        assert _receive(sock, 4) == b"ping"
        relay.partition()
        sock.sendall(b"held")
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(100)  # no answer, no FIN, no RST: the socket still looks connected
        relay.heal()
        sock.settimeout(5)
        assert _receive(sock, 4) == b"held"


def test_one_way_loss_lets_the_other_direction_through(relay: LinkRelay) -> None:
    with _client(relay) as sock:
        sock.sendall(b"a")
        assert _receive(sock, 1) == b"a"
        relay.set_link(down=False)
        sock.sendall(b"b")  # reaches the echo server; its answer is held
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        relay.set_link()
        sock.settimeout(5)
        assert _receive(sock, 1) == b"b"


def test_a_connection_made_during_a_partition_and_given_up_never_reaches_the_server(
    relay: LinkRelay, echo_server: EchoServer
) -> None:
    relay.partition()
    with _client(relay) as sock:
        sock.sendall(b"CONNECT")
    wait_for(
        "the relay to see the client give up",
        lambda: relay.connections and relay.connections[-1].client_closed_at,
        timeout_s=5,
    )
    relay.heal()
    time.sleep(0.3)
    assert echo_server.reached == 0
    record = relay.connections[-1]
    assert record.upstream_at is None and record.client_closed_at is not None


def test_a_cut_resets_the_connection(relay: LinkRelay) -> None:
    with _client(relay) as sock:
        sock.sendall(b"a")
        assert _receive(sock, 1) == b"a"
        relay.cut()
        with pytest.raises(ConnectionResetError):
            for _ in range(50):
                if not sock.recv(100):
                    break
                time.sleep(0.02)
