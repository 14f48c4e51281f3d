"""The collector's MQTT side, in a process of its own.

paho handles every packet in pure Python: each message in, its PUBACK, and each ack out.
Sharing one GIL with the database writer, the two took turns (and every
socket call handed the GIL over, so each waited for the other's switch interval). Here paho has a
process, and so a core, to itself; the collector process keeps the database.

What crosses the socket pair, pickled (both ends are this module, in one deployment):

- gateway -> collector: ``("msgs", [(topic, payload, wall_time), ...])`` in chunks of whatever
  arrived since the last one, and ``("state", connected, subscribed)`` on every change;
- collector -> gateway: ``("acks", ts, [(agent_id, stream_id, events_through, ranges), ...])``
  once the batch they acknowledge is committed, ``("offline", ts)`` and ``("stop",)``.

Nothing is held here that the contract needs kept: a message is PUBACKed to the broker on
receipt as before, and acknowledged to its agent only by an app-level ack the collector sends
after its commit. If either process dies, what was in flight is simply re-sent by the agents.
The gateway exits as soon as the collector's end closes, so a killed collector never leaves a
gateway holding its client id.

**The fast path leans on paho's internals, on purpose.** ``_BufferedClient`` replaces paho's
socket hooks (``_sock_recv``, ``_sock_send``, ``_sock_close``) to read and write a turn's
packets with one system call, and its ``_handle_publish`` to read a QoS 1 PUBLISH without
properties straight off the packet (``_in_packet``, ``_send_puback``); paho would build a
properties object and a message object and walk its topic filters for each. Reading the
packets itself took the gateway from 62 % to 27 % of a core while the rate it served rose from
8,058 to 10,568 msg/s (``docs/benchmarks.md``, ``benchmarks.ingest``). These names are private
to paho, so:

- they are tested against **paho-mqtt 2.2** (2.2.0), and ``pyproject.toml`` pins
  ``paho-mqtt>=2.2,<2.3`` so that no other version is installed unseen;
- ``tests/collector/ingest/test_gateway.py`` feeds random PUBLISH packets (any QoS, with and
  without properties) to this client and to paho's own parsing and requires the same topic,
  payload and answer (property tests, in ``make test``): run it before widening the pin.
"""

from __future__ import annotations

import hashlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from protocol import (
    MAX_PAYLOAD_BYTES,
    AckMessage,
    Channel,
    CollectorStatus,
    SeqRange,
    agent_topic,
    encode,
)
from protocol.acksig import derive_ack_key, sign_ack
from protocol.topics import (
    AGENT_TO_COLLECTOR,
    agent_subscription,
    collector_status_topic,
    shared_subscription,
)

log = logging.getLogger(__name__)

COLLECTOR_SESSION_EXPIRY_S = 60
# Acks handed to paho and not yet written out; the rest wait here. The window is kept here
# rather than by paho, which rescans its whole list of messages on every PUBACK when it keeps
# one (and numbers messages with 16 bits, silently replacing a queued one whose number comes
# round again).
ACK_WINDOW = 100
# Acks go at QoS 0 (docs/protocol.md): a lost one costs only a re-send, which the agent makes
# on its timeout and on every reconnect anyway, and at QoS 1 each ack was two more packets
# for the gateway, the broker and the agent (the PUBACK each way).
ACK_QOS = 0
# Packets read from the broker before what they carried is handed over to the collector.
CHUNK_READS = 200
# What paho's publish returns for a message it has queued.
_QUEUED = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN)
# paho's keepalive and reconnect timing only need a look this often while nothing happens.
IDLE_WAKE_S = 0.5
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
STOP_FLUSH_S = 10.0

# (agent_id, stream_id, events_through, [(first, last), ...] of telemetry seqs)
AckSpec = tuple[str, str, int, list[tuple[int, int]]]
# (topic, payload, wall-clock receive time), or for a payload over the contract's limit
# (topic, its first OVERSIZE_PREFIX_BYTES, time, its size, its SHA-256): nothing bigger than
# the limit crosses to the collector, whatever the broker let through.
RawMessage = tuple[str, bytes, float] | tuple[str, bytes, float, int, str]
OVERSIZE_PREFIX_BYTES = 4_096  # collector.ingest.admission.OVERSIZE_KEEP_BYTES


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway reaches the broker, as one collector instance."""

    host: str
    port: int
    instance_id: str
    shared_group: str | None
    username: str | None = None
    password: str | None = None
    # The collectors' master secret: every ack is signed with its agent's key derived from it
    # (protocol/acksig.py). None: acks go unsigned.
    ack_secret: bytes | None = None


# -- the gateway process ------------------------------------------------------------------

# Bytes read from the broker's socket at once; paho asks for a packet in three reads or more.
READ_AHEAD = 65_536
# Bytes of written packets held before the socket takes them; paho sends each packet (a PUBACK,
# an ack) with a system call of its own.
WRITE_BEHIND = 262_144
# At a close, how long what is written but not yet sent may take to leave (the last acks, the
# DISCONNECT).
CLOSE_FLUSH_S = 2.0


class _BufferedClient(mqtt.Client):
    """paho with its socket reads and writes buffered.

    paho reads each packet as its command byte, then its length byte by byte, then its body:
    three system calls or more a message, and the gateway looked whether more was waiting after
    each one (a fourth). Here one read of up to ``READ_AHEAD`` bytes serves every packet it
    holds. The other way, each packet paho writes joins a buffer that the gateway hands to the
    socket once a turn (``send_written``): one system call for a turn's PUBACKs and acks rather
    than one each.

    A QoS 1 PUBLISH without properties (what agents send) is read straight off the packet and
    handed to ``on_payload`` as (topic, payload): paho's own handling builds a properties
    object, a message object and walks its topic filters for each, more than the rest of the
    gateway's work on a message. Anything else (another QoS, properties, a topic that is not
    UTF-8) goes through paho as before, to ``on_payload`` as well.

    Otherwise only paho's socket hooks are replaced, with their contract kept: a read returns
    at most what was asked, raises ``BlockingIOError`` when nothing is there, and returns
    ``b""`` at the end of the stream; a write takes all it is given, or raises
    ``BlockingIOError`` while the buffer is full (paho keeps the packet and tries again).
    ``want_write`` also counts the buffer, so the gateway waits for the socket while bytes are
    held. A close first lets what is held out (paho closes right after writing its DISCONNECT);
    whatever was read ahead goes with it.
    """

    def __init__(self, *args: Any, on_payload: Callable[[str, bytes], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_payload = on_payload
        self.on_message = lambda _c, _u, msg: on_payload(msg.topic, bytes(msg.payload))
        self._ahead = b""
        self._ahead_at = 0
        self._behind = bytearray()

    def read_ahead(self) -> bool:
        """True while bytes already read wait to be parsed."""
        return self._ahead_at < len(self._ahead)

    def want_write(self) -> bool:
        return bool(self._behind) or super().want_write()

    def send_written(self) -> None:
        """Hand the socket what it takes of the written bytes (never waits)."""
        sock = self._sock
        if not self._behind or sock is None:
            return
        try:
            sent = sock.send(self._behind)
        except BlockingIOError:
            return
        except OSError:
            # The connection is gone: the next read says so and paho closes it.
            self._behind.clear()
            return
        del self._behind[:sent]

    def _handle_publish(self) -> MQTTErrorCode:
        command: int = self._in_packet["command"]
        packet: bytearray = self._in_packet["packet"]
        if command & 0x06 != 0x02 or self._manual_ack or self._protocol != mqtt.MQTTv5:
            return super()._handle_publish()
        # Topic (16-bit length, then UTF-8), packet id (16 bits), properties' length (0: none).
        body_at = 2 + int.from_bytes(packet[:2], "big")
        if len(packet) < body_at + 3 or packet[body_at + 2] != 0:
            return super()._handle_publish()
        try:
            topic = packet[2:body_at].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        self._on_payload(topic, bytes(memoryview(packet)[body_at + 3 :]))
        return self._send_puback(int.from_bytes(packet[body_at : body_at + 2], "big"))

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self.read_ahead():
            data = super()._sock_recv(READ_AHEAD)
            if not data:
                return data  # the broker closed the connection
            self._ahead, self._ahead_at = data, 0
        start = self._ahead_at
        self._ahead_at = min(start + bufsize, len(self._ahead))
        return self._ahead[start : self._ahead_at]

    def _sock_send(self, buf: bytes | bytearray) -> int:
        if self._sock is None:
            raise ConnectionError("self._sock is None")
        if len(self._behind) >= WRITE_BEHIND:
            self.send_written()
            if len(self._behind) >= WRITE_BEHIND:
                raise BlockingIOError()
        self._behind += buf
        return len(buf)

    def _sock_close(self) -> None:
        deadline = time.monotonic() + CLOSE_FLUSH_S
        while self._behind and self._sock is not None and time.monotonic() < deadline:
            self.send_written()
            if self._behind:
                try:
                    select.select([], [self._sock], [], 0.05)
                except (OSError, ValueError):
                    break
        self._behind.clear()
        self._ahead, self._ahead_at = b"", 0
        super()._sock_close()


class _Gateway:
    """One thread runs paho's network loop (paho's external-loop interface), the collector's
    commands and the hand-over: with a second thread, each ack published would wake the other
    through a socket and the two would trade the GIL for every packet."""

    def __init__(self, conn: Connection, config: GatewayConfig) -> None:
        self._conn = conn
        self._config = config
        self._inbox: list[RawMessage] = []
        self._acks: deque[tuple[str, bytes]] = deque()
        # Acks handed to paho, in order; those at the front that paho has written are let go.
        # Watched rather than reported: paho's on_publish builds two objects per QoS 0 message.
        self._in_flight: deque[mqtt.MQTTMessageInfo] = deque()
        # The collector's clock minus the wall clock (a test clock may be ahead).
        self._clock_offset = timedelta(0)
        self._connected = False
        self._retry_at = 0.0
        self._retry_delay_s = RECONNECT_MIN_S
        self._status_topic = collector_status_topic(config.instance_id)
        # Agents' ack keys, derived once each (one HMAC saved per ack; 32 bytes per agent).
        self._ack_keys: dict[str, bytes] = {}
        self._client = self._make_client()

    def _make_client(self) -> _BufferedClient:
        config = self._config
        client = _BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"collector-{config.instance_id}",
            protocol=mqtt.MQTTv5,
            on_payload=self._on_payload,
        )
        if config.username:
            client.username_pw_set(config.username, config.password)
        client.will_set(self._status_topic, self._status(online=False), qos=1, retain=True)
        client.max_inflight_messages_set(0)  # no limit in paho: ACK_WINDOW is kept here
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        return client

    def run(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = COLLECTOR_SESSION_EXPIRY_S
        self._client.connect_async(
            self._config.host,
            self._config.port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        try:
            while self._turn():
                pass
            self._flush_acks(STOP_FLUSH_S)
        finally:
            self._client.disconnect()
            self._network(timeout_s=0.0)  # the DISCONNECT packet goes out

    def _turn(self) -> bool:
        """Wait for the broker or the collector, serve both; False once told to stop."""
        sock = self._client.socket()
        if sock is None:
            self._reconnect_when_due()
            sock = self._client.socket()
        readers: list[Any] = [self._conn] if sock is None else [self._conn, sock]
        writers = [sock] if sock is not None and self._client.want_write() else []
        # Packets already read ahead are waiting: look, but do not wait.
        ahead = self._client.read_ahead()
        try:
            readable, writable, _ = select.select(
                readers, writers, [], 0.0 if ahead else IDLE_WAKE_S
            )
        except (OSError, ValueError):
            readable, writable = [], []  # the socket closed under us: reconnect next turn
        if sock is not None:
            self._network(
                timeout_s=0.0, readable=ahead or sock in readable, writable=sock in writable
            )
        self._handover()
        if self._conn in readable and not self._commands():
            return False
        self._publish_acks()
        self._client.send_written()
        return True

    def _network(self, *, timeout_s: float, readable: bool = True, writable: bool = True) -> None:
        """Read what the broker sent (up to a chunk), write what is queued, keep alive."""
        client = self._client
        if readable:
            for _ in range(CHUNK_READS):
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    break
                if client.read_ahead():
                    continue
                sock = client.socket()
                if sock is None or not select.select([sock], [], [], timeout_s)[0]:
                    break
        if writable and client.socket() is not None:
            client.loop_write()
            client.send_written()
        if client.socket() is not None:
            client.loop_misc()

    def _reconnect_when_due(self) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            return
        try:
            self._client.reconnect()
        except OSError as err:
            log.warning("broker unreachable (%s); retrying in %.0f s", err, self._retry_delay_s)
            self._retry_at = now + self._retry_delay_s
            self._retry_delay_s = min(self._retry_delay_s * 2, RECONNECT_MAX_S)

    def _commands(self) -> bool:
        """Every command waiting from the collector; False at stop. The collector gone (EOF)
        ends this process at once, see the module docstring."""
        try:
            while self._conn.poll(0):
                if not self._command(self._conn.recv()):
                    return False
        except (EOFError, OSError):
            log.warning("collector gone: gateway exits")
            os._exit(1)
        return True

    def _command(self, command: tuple[Any, ...]) -> bool:
        kind = command[0]
        if kind == "acks":
            _, ts, specs = command
            self._clock_offset = ts - datetime.now(UTC)
            self._acks.extend(self._ack(spec, ts) for spec in specs)
        elif kind == "offline":
            self._clock_offset = command[1] - datetime.now(UTC)
            self._client.publish(self._status_topic, self._status(online=False), qos=1, retain=True)
        elif kind == "stop":
            return False
        return True

    def _ack(self, spec: AckSpec, ts: datetime) -> tuple[str, bytes]:
        agent_id, stream_id, through, ranges = spec
        collector_id = self._config.instance_id
        sig = None
        if self._config.ack_secret is not None:
            key = self._ack_keys.get(agent_id)
            if key is None:
                key = self._ack_keys[agent_id] = derive_ack_key(self._config.ack_secret, agent_id)
            sig = sign_ack(
                key,
                agent_id=agent_id,
                stream_id=stream_id,
                events_through=through,
                telemetry=ranges,
                collector_id=collector_id,
                ts=ts,
            )
        # Built from values this collector validated and committed: no second validation.
        ack = AckMessage.model_construct(
            agent_id=agent_id,
            stream_id=stream_id,
            events_through=through,
            telemetry=[SeqRange.model_construct(first=first, last=last) for first, last in ranges],
            collector_id=collector_id,
            ts=ts,
            sig=sig,
        )
        return agent_topic(agent_id, Channel.ACK), encode(ack)

    def _unwritten(self) -> int:
        """Acks handed to paho and not yet written by it."""
        in_flight = self._in_flight
        while in_flight and in_flight[0].is_published():
            in_flight.popleft()
        return len(in_flight)

    def _publish_acks(self) -> None:
        room = ACK_WINDOW - self._unwritten()
        while self._acks and room > 0:
            topic, payload = self._acks.popleft()
            info = self._client.publish(topic, payload, qos=ACK_QOS)
            # Without a connection paho drops a QoS 0 message at once (and never marks it
            # published): that ack is lost, and its agent re-sends. AGAIN: queued, not written.
            if info.rc in _QUEUED and not info.is_published():
                self._in_flight.append(info)
                room -= 1

    def _flush_acks(self, timeout_s: float) -> None:
        """At stop: what the collector committed gets its ack out before the disconnect."""
        deadline = time.monotonic() + timeout_s
        while (self._acks or self._unwritten()) and time.monotonic() < deadline:
            if self._client.socket() is None:
                self._reconnect_when_due()
            self._publish_acks()
            self._network(timeout_s=0.01)

    def _handover(self) -> None:
        if self._inbox:
            items, self._inbox = self._inbox, []
            self._send(("msgs", items))

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except OSError:
            log.warning("collector gone: gateway exits")
            os._exit(1)

    def _status(self, *, online: bool) -> bytes:
        now = datetime.now(UTC) + self._clock_offset
        return encode(CollectorStatus(collector_id=self._config.instance_id, online=online, ts=now))

    # -- paho callbacks (called from loop_read/loop_write, on this same thread) -----------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        self._connected = True
        self._retry_delay_s = RECONNECT_MIN_S
        group = self._config.shared_group
        # Retained messages (births) only for a new subscription: a resumed session already
        # queued every birth published while the collector was away, and mosquitto would
        # otherwise send all retained births again at each reconnect (20,000 for a fleet).
        options = SubscribeOptions(qos=1, retainHandling=1)
        client.subscribe(
            [
                (
                    shared_subscription(group, channel) if group else agent_subscription(channel),
                    options,
                )
                for channel in AGENT_TO_COLLECTOR
            ]
        )
        client.publish(self._status_topic, self._status(online=True), qos=1, retain=True)
        self._send(("state", True, False))
        log.info(
            "collector %s connected to %s:%d",
            self._config.instance_id,
            self._config.host,
            self._config.port,
        )

    def _on_subscribe(self, *_args: Any) -> None:
        self._send(("state", self._connected, True))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if self._connected:
            by = "the broker" if flags.is_disconnect_packet_from_server else "the connection"
            log.warning("collector lost the broker (%s: %s); reconnecting", by, reason)
        self._connected = False
        # QoS 0 acks still queued in paho die with the connection, unreported.
        self._in_flight.clear()
        self._retry_at = time.monotonic() + self._retry_delay_s
        self._send(("state", False, False))

    def _on_payload(self, topic: str, payload: bytes) -> None:
        if len(payload) > MAX_PAYLOAD_BYTES:
            digest = hashlib.sha256(payload).hexdigest()
            prefix = payload[:OVERSIZE_PREFIX_BYTES]
            self._inbox.append((topic, prefix, time.time(), len(payload), digest))
            return
        self._inbox.append((topic, payload, time.time()))


def _main(argv: Sequence[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Ctrl-C reaches the whole process group: the collector decides when the gateway stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(argv[0]))
    config: GatewayConfig = conn.recv()
    _Gateway(conn, config).run()
    return 0


# -- the collector's end ------------------------------------------------------------------


class GatewayLink:
    """Starts the gateway process and talks to it; callbacks run on this end's reader thread."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        on_messages: Callable[[list[RawMessage]], None],
        on_state: Callable[[bool, bool], None],
    ) -> None:
        self._config = config
        self._on_messages = on_messages
        self._on_state = on_state
        self._send_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the gateway; it connects in the background (an absent broker is retried)."""
        self._spawn()
        self._reader = threading.Thread(target=self._read, name="ingest-gateway", daemon=True)
        self._reader.start()

    def send_acks(self, ts: datetime, specs: list[AckSpec]) -> None:
        """Hand committed acks to the gateway (never blocks for long: it always reads)."""
        if specs:
            self._send(("acks", ts, specs))

    def publish_offline(self, ts: datetime) -> None:
        """Say this instance is going away (its Will says the same if it just dies)."""
        self._send(("offline", ts))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let the gateway send what it holds, disconnect and exit."""
        self._stopping = True
        self._send(("stop",))
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.error("gateway did not stop within %.0f s: killed", timeout_s)
                self._proc.kill()
                self._proc.wait()
        if self._conn is not None:
            self._conn.close()

    def _send(self, message: object) -> None:
        if self._conn is None:
            return
        try:
            with self._send_lock:
                self._conn.send(message)
        except OSError as err:
            # The reader restarts a dead gateway; these acks are lost and the agents re-send.
            log.warning("gateway unreachable: %s", err)

    def _read(self) -> None:
        while True:
            conn = self._conn
            assert conn is not None
            try:
                message = conn.recv()
            except (EOFError, OSError):
                if self._stopping:
                    return
                self._restart()
                continue
            if message[0] == "msgs":
                self._on_messages(message[1])
            elif message[0] == "state":
                self._on_state(message[1], message[2])

    def _restart(self) -> None:
        code = self._proc.wait() if self._proc is not None else None
        log.error("gateway process exited (%s): restarting it", code)
        self._on_state(False, False)
        if self._conn is not None:
            self._conn.close()
        time.sleep(1.0)
        self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        # A plain interpreter, not multiprocessing: its spawn would re-run the ``cli`` entry point.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "collector.ingest.gateway", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        # Only the gateway holds its end now: its death reads as EOF here, and ours as EOF there.
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send(self._config)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
