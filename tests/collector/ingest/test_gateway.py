"""The collector's MQTT gateway process: restarted when it dies, gone when the collector dies."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from collector.ingest.gateway import ACK_WINDOW, AckSpec, GatewayConfig, _BufferedClient, _Gateway
from protocol import AckMessage
from protocol.acksig import ack_signature_valid, derive_ack_key
from simulators.broker import MosquittoProcess
from simulators.stack import Stack
from tests.conftest import wait_for

pytestmark = [pytest.mark.mqtt]


def _gateways(collector_pid: int | None) -> list[int]:
    """Pids of the gateway processes the collector started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError):
            continue
        if parent == collector_pid and b"collector.ingest.gateway" in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Agent:
    """A bare agent: publishes alarm events and collects the collector's acks."""

    def __init__(self, stack: Stack) -> None:
        self.agent_id = f"gw-{uuid.uuid4().hex[:8]}"
        self.stream_id = uuid.uuid4().hex
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self._client.on_message = lambda _c, _u, m: self.acks.put(json.loads(m.payload))
        self._client.connect(stack.broker.host, stack.broker.port)
        self._client.subscribe(f"sw/v1/agents/{self.agent_id}/ack", qos=1)
        self._client.loop_start()

    def alarm(self, seq: int) -> None:
        body = {
            "v": 1,
            "kind": "alarm",
            "agent_id": self.agent_id,
            "stream_id": self.stream_id,
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(),
            "clock_synced": True,
            "site_id": "PM-GW",
            "equipment_id": "door-main",
            "point": f"contact-{seq}",
            "alarm_type": "door_open",
            "transition": "raised",
            "severity": "major",
        }
        topic = f"sw/v1/agents/{self.agent_id}/events"
        self._client.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)

    def acked_through(self, seq: int, *, timeout_s: float = 30.0) -> bool:
        """Re-send until an ack covers ``seq`` (as an agent does), or time out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.alarm(seq)
            try:
                while True:
                    if self.acks.get(timeout=1.0)["events_through"] >= seq:
                        return True
            except queue.Empty:
                continue
        return False

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture
def agent(stack: Stack) -> Iterator[Agent]:
    bare = Agent(stack)
    stack.enrol(agent_id=bare.agent_id, site_id="PM-GW")
    yield bare
    bare.close()


def test_a_killed_gateway_is_restarted_and_ingest_goes_on(stack: Stack, agent: Agent) -> None:
    assert agent.acked_through(1)
    (gateway,) = _gateways(stack.collector.pid)
    os.kill(gateway, signal.SIGKILL)
    wait_for("a new gateway", lambda: [p for p in _gateways(stack.collector.pid) if p != gateway])
    assert agent.acked_through(2)
    assert stack.collector.running


def test_a_killed_collector_leaves_no_gateway_holding_its_client_id(stack: Stack) -> None:
    gateways = wait_for("the gateway", lambda: _gateways(stack.collector.pid))
    stack.collector.kill()
    wait_for("the gateway to exit", lambda: not any(_alive(p) for p in gateways), timeout_s=10)


def test_acks_dropped_while_the_broker_is_away_do_not_hold_up_the_next_ones() -> None:
    # Acks go at QoS 0: paho drops one published without a connection and never reports it
    # sent. Counted as in flight, 100 of them would close the ack window for good.
    ours, theirs = socket.socketpair()
    config = GatewayConfig(host="127.0.0.1", port=1, instance_id="c-test", shared_group=None)
    conn = Connection(theirs.detach())
    gateway = _Gateway(conn, config)
    specs: list[AckSpec] = [(f"a{i}", "0" * 32, i, []) for i in range(ACK_WINDOW + 50)]
    gateway._command(("acks", datetime.now(UTC), specs))
    gateway._publish_acks()
    assert not gateway._acks  # given up on, not queued behind a full window
    assert gateway._unwritten() == 0
    conn.close()
    ours.close()


def _acks_built(secret: bytes | None, agents: list[str]) -> list[AckMessage]:
    """The acks a gateway with ``secret`` builds for ``agents``, parsed as an agent does."""
    ours, theirs = socket.socketpair()
    config = GatewayConfig(
        host="127.0.0.1", port=1, instance_id="c-sig", shared_group=None, ack_secret=secret
    )
    conn = Connection(theirs.detach())
    gateway = _Gateway(conn, config)
    ts = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)
    try:
        return [
            AckMessage.model_validate_json(gateway._ack((agent, "ab" * 16, 7, [(3, 5)]), ts)[1])
            for agent in agents
        ]
    finally:
        conn.close()
        ours.close()


def test_acks_are_signed_with_each_agents_own_key() -> None:
    secret = bytes(range(32))
    acks = _acks_built(secret, ["pm-sig-1", "pm-sig-2", "pm-sig-1"])
    key_1, key_2 = derive_ack_key(secret, "pm-sig-1"), derive_ack_key(secret, "pm-sig-2")
    assert [ack_signature_valid(key_1, a) for a in acks] == [True, False, True]
    assert [ack_signature_valid(key_2, a) for a in acks] == [False, True, False]


def test_without_a_secret_acks_carry_no_signature() -> None:
    assert [a.sig for a in _acks_built(None, ["pm-sig-1"])] == [None]


def test_every_ack_committed_before_a_stop_reaches_its_agent_then_a_clean_disconnect(
    broker: MosquittoProcess,
) -> None:
    # The gateway holds written packets until the socket takes them, a turn's worth at once;
    # a stop must let them all out, the DISCONNECT last (else the broker publishes the Will).
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    watcher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = lambda _c, _u, m: received.put((m.topic, bytes(m.payload)))
    watcher.connect(broker.host, broker.port)
    watcher.subscribe([("sw/v1/agents/+/ack", 1), ("sw/v1/collectors/+/status", 1)])
    watcher.loop_start()
    ours, theirs = socket.socketpair()
    collector_end = Connection(ours.detach())
    config = GatewayConfig(
        host=broker.host, port=broker.port, instance_id="c-flush", shared_group=None
    )
    gateway = _Gateway(Connection(theirs.detach()), config)
    thread = threading.Thread(target=gateway.run, daemon=True)
    thread.start()
    try:
        assert wait_for("the gateway online", lambda: _drain_until_ready(collector_end))
        count = ACK_WINDOW * 30
        specs: list[AckSpec] = [(f"ag-{i:05d}", "f" * 32, i, [(1, i)]) for i in range(count)]
        collector_end.send(("acks", datetime.now(UTC), specs))
        collector_end.send(("stop",))
        thread.join(timeout=30)
        assert not thread.is_alive()
        acks: dict[str, dict[str, Any]] = {}
        statuses: list[dict[str, Any]] = []

        def all_acks() -> bool:
            while True:
                try:
                    topic, payload = received.get_nowait()
                except queue.Empty:
                    return len(acks) == count
                body = json.loads(payload)
                if topic.endswith("/status"):
                    statuses.append(body)
                else:
                    acks[body["agent_id"]] = body

        wait_for("every ack", all_acks, timeout_s=30)
        assert acks["ag-01234"]["events_through"] == 1234
        assert acks["ag-01234"]["telemetry"] == [{"first": 1, "last": 1234}]
        time.sleep(1.0)  # a Will would follow the connection's end at once
        all_acks()
        assert [s["online"] for s in statuses if s["collector_id"] == "c-flush"] == [True]
    finally:
        watcher.loop_stop()
        watcher.disconnect()
        collector_end.close()


def _drain_until_ready(conn: Connection) -> bool:
    ready = False
    while conn.poll(0.2):
        message = conn.recv()
        ready = ready or (message[0] == "state" and message[2])
    return ready


def _publish_packet(topic: bytes, payload: bytes, *, qos: int, mid: int, props: bytes) -> bytes:
    """A PUBLISH's variable header and payload (what follows the fixed header)."""
    packet_id = mid.to_bytes(2, "big") if qos else b""
    return len(topic).to_bytes(2, "big") + topic + packet_id + props + payload


def _received(command: int, packet: bytes) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    """What the gateway's client hands on for one PUBLISH, and the packets it answers with."""
    got: list[tuple[str, bytes]] = []
    client = _BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5,
        on_payload=lambda topic, payload: got.append((topic, payload)),
    )
    client._in_packet["command"] = command
    client._in_packet["packet"] = bytearray(packet)
    client._handle_publish()
    return got, [bytes(p["packet"]) for p in client._out_packet]


_FORMAT_INDICATOR = b"\x02\x01\x01"  # properties: 2 bytes long, PayloadFormatIndicator = 1


@settings(max_examples=200, deadline=None)
@given(
    topic=st.text(min_size=1, max_size=80).filter(lambda t: "\x00" not in t),
    payload=st.binary(max_size=600),
    mid=st.integers(1, 65_535),
    props=st.sampled_from([b"\x00", _FORMAT_INDICATOR]),
)
def test_a_qos1_publish_is_read_as_paho_reads_it_and_acked_with_its_id(
    topic: str, payload: bytes, mid: int, props: bytes
) -> None:
    # Without properties the packet is read here, with them by paho: the same either way.
    packet = _publish_packet(topic.encode(), payload, qos=1, mid=mid, props=props)
    got, answers = _received(0x32, packet)
    assert got == [(topic, payload)]
    assert answers == [b"\x40\x02" + mid.to_bytes(2, "big")]  # PUBACK with the packet's id


def _received_by_paho(command: int, packet: bytes) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    """What paho's own client delivers for one PUBLISH, and the packets it answers with."""
    got: list[tuple[str, bytes]] = []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append((msg.topic, bytes(msg.payload)))
    client._in_packet["command"] = command
    client._in_packet["packet"] = bytearray(packet)
    client._handle_publish()
    return got, [bytes(p["packet"]) for p in client._out_packet]


@settings(max_examples=300, deadline=None)
@given(
    topic=st.text(min_size=1, max_size=80).filter(lambda t: "\x00" not in t),
    payload=st.binary(max_size=600),
    mid=st.integers(1, 65_535),
    qos=st.sampled_from([0, 1, 2]),
    props=st.sampled_from([b"\x00", _FORMAT_INDICATOR]),
)
def test_every_publish_is_read_and_answered_as_paho_itself_does(
    topic: str, payload: bytes, mid: int, qos: int, props: bytes
) -> None:
    # The fast path against the paho it replaces, packet for packet (see the module docstring
    # of collector/ingest/gateway.py: the paho versions this holds for are pinned).
    packet = _publish_packet(topic.encode(), payload, qos=qos, mid=mid, props=props)
    command = 0x30 | qos << 1
    assert _received(command, packet) == _received_by_paho(command, packet)


def test_a_qos0_publish_is_handed_on_and_not_acked() -> None:
    packet = _publish_packet(b"sw/v1/agents/a1/events", b"{}", qos=0, mid=0, props=b"\x00")
    assert _received(0x30, packet) == ([("sw/v1/agents/a1/events", b"{}")], [])
