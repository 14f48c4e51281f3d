"""A broker configured by enrolment, attacked with a stolen box's credentials (real mosquitto
and its dynamic-security plugin): the box stays confined to its own site."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from collector.enrolment.dynsec import MAX_PACKET_BYTES
from protocol import MAX_PAYLOAD_BYTES
from simulators.secured_broker import BrokerClient, SecuredBroker
from simulators.stack import Stack
from tests.conftest import wait_for

pytestmark = pytest.mark.mqtt

NOT_AUTHORIZED = 0x87
SHARED_EVENTS = "$share/shelterwatch/sw/v1/agents/+/events"


class Client:
    """A paho MQTT 5 client recording its CONNACK, SUBACKs, PUBACKs, messages, disconnects."""

    def __init__(
        self, broker: SecuredBroker, creds: BrokerClient, *, client_id: str | None = None
    ) -> None:
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnects: queue.Queue[ReasonCode] = queue.Queue()
        self.mqtt = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or creds.client_id,
            protocol=mqtt.MQTTv5,
        )
        self.mqtt.username_pw_set(creds.username, creds.password)
        self.mqtt.on_connect = lambda _c, _u, _f, rc, _p: self.connack.put(rc)
        self.mqtt.on_subscribe = lambda _c, _u, _m, rcs, _p: self.subacks.put(rcs)
        self.mqtt.on_publish = lambda _c, _u, _mid, rc, _p: self.pubacks.put(rc)
        self.mqtt.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.mqtt.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.put(rc)
        self.mqtt.connect(broker.host, broker.port)
        self.mqtt.loop_start()
        self.reason = self.connack.get(timeout=10)

    def publish(self, topic: str, payload: bytes = b"{}") -> ReasonCode:
        self.mqtt.publish(topic, payload, qos=1)
        return self.pubacks.get(timeout=10)

    def subscribe(self, *topics: str) -> list[int]:
        self.mqtt.subscribe([(t, 1) for t in topics])
        return [rc.value for rc in self.subacks.get(timeout=10)]

    def received(self, count: int, *, timeout_s: float = 10.0) -> list[str]:
        """Topics of the next ``count`` messages (fewer if they do not come in time)."""
        topics: list[str] = []
        deadline = time.monotonic() + timeout_s
        while len(topics) < count and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                topics.append(self.messages.get(timeout=0.1)[0])
        return topics

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[SecuredBroker]:
    broker = SecuredBroker(tmp_path / "broker", instances=["c1", "c2"])
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def pair(secured: SecuredBroker) -> tuple[BrokerClient, BrokerClient]:
    """Agents A (the stolen box) and B (its neighbour)."""
    return secured.enrol_agent("pm-acl-a"), secured.enrol_agent("pm-acl-b")


@pytest.fixture
def clients(secured: SecuredBroker) -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def connect(
    secured: SecuredBroker,
    clients: list[Client],
    creds: BrokerClient,
    *,
    client_id: str | None = None,
) -> Client:
    client = Client(secured, creds, client_id=client_id)
    clients.append(client)
    return client


def test_only_the_enrolled_password_gets_in(
    secured: SecuredBroker, pair: tuple[BrokerClient, BrokerClient], clients: list[Client]
) -> None:
    a, b = pair
    assert not connect(secured, clients, a).reason.is_failure
    wrong = BrokerClient(a.username, b.password, a.client_id, a.password_file)
    stranger = BrokerClient("pm-acl-z", "anything", "agent-pm-acl-z", a.password_file)
    assert connect(secured, clients, wrong).reason.value == NOT_AUTHORIZED
    assert connect(secured, clients, stranger).reason.value == NOT_AUTHORIZED


def test_a_stolen_box_cannot_join_the_collectors_shared_subscription(
    secured: SecuredBroker, pair: tuple[BrokerClient, BrokerClient], clients: list[Client]
) -> None:
    a, b = pair
    collector = connect(secured, clients, secured.collector("c1"))
    assert collector.subscribe(SHARED_EVENTS) == [1]
    thief = connect(secured, clients, a)
    refused = thief.subscribe(
        SHARED_EVENTS,
        "$share/shelterwatch/sw/v1/agents/pm-acl-b/events",
        "sw/v1/agents/+/events",
        "sw/v1/agents/pm-acl-b/ack",
        "#",
    )
    assert refused == [NOT_AUTHORIZED] * 5
    neighbour = connect(secured, clients, b)
    for _ in range(20):
        assert neighbour.publish("sw/v1/agents/pm-acl-b/events").value == 0
    # With the old acl_file the broker split these between the collector and the thief.
    assert collector.received(20) == ["sw/v1/agents/pm-acl-b/events"] * 20
    assert thief.received(1, timeout_s=1.0) == []


@pytest.mark.parametrize("stolen_id", ["agent-pm-acl-b", "collector-c1", "collector-c2"])
def test_someone_elses_client_id_is_refused_and_its_owner_stays_connected(
    secured: SecuredBroker,
    pair: tuple[BrokerClient, BrokerClient],
    clients: list[Client],
    stolen_id: str,
) -> None:
    a, b = pair
    collector = connect(secured, clients, secured.collector("c1"))
    assert collector.subscribe(SHARED_EVENTS) == [1]
    neighbour = connect(secured, clients, b)
    for _ in range(3):
        assert connect(secured, clients, a, client_id=stolen_id).reason.value == NOT_AUTHORIZED
    time.sleep(2.0)  # a session takeover showed as a disconnect every 1-2 s
    assert neighbour.disconnects.empty() and collector.disconnects.empty()
    assert neighbour.publish("sw/v1/agents/pm-acl-b/events").value == 0
    assert collector.received(1) == ["sw/v1/agents/pm-acl-b/events"]


def test_collector_instances_cannot_share_a_client_id(
    secured: SecuredBroker, clients: list[Client]
) -> None:
    c2 = connect(secured, clients, secured.collector("c2"))
    assert connect(
        secured, clients, secured.collector("c1"), client_id="collector-c2"
    ).reason.value == (NOT_AUTHORIZED)
    assert not c2.reason.is_failure and c2.disconnects.empty()


# Another agent's channels, what the collector publishes, a collector's status, the plugin's
# control topic (a box enrolling itself a new client).
FOREIGN = [
    ("sw/v1/agents/pm-acl-b/events", b"{}"),
    ("sw/v1/agents/pm-acl-b/status", b"{}"),
    ("sw/v1/agents/pm-acl-b/ack", b"{}"),
    ("sw/v1/agents/pm-acl-a/ack", b"{}"),
    ("sw/v1/agents/pm-acl-a/config", b"{}"),
    ("sw/v1/collectors/c1/status", b"{}"),
    (
        "$CONTROL/dynamic-security/v1",
        b'{"commands": [{"command": "createClient", "username": "pm-evil", "password": "x"}]}',
    ),
]


def test_a_stolen_box_publishing_off_its_own_topics_gets_0x87(
    secured: SecuredBroker, pair: tuple[BrokerClient, BrokerClient], clients: list[Client]
) -> None:
    a, b = pair
    collector = connect(secured, clients, secured.collector("c1"))
    assert collector.subscribe(SHARED_EVENTS, "$share/shelterwatch/sw/v1/agents/+/status") == [1, 1]
    victim = connect(secured, clients, b)
    assert victim.subscribe("sw/v1/agents/pm-acl-b/ack") == [1]
    thief = connect(secured, clients, a)
    refused = [thief.publish(topic, payload).value for topic, payload in FOREIGN]
    assert refused == [NOT_AUTHORIZED] * len(FOREIGN)
    assert thief.publish("sw/v1/agents/pm-acl-a/events").value == 0
    assert collector.received(2, timeout_s=2.0) == ["sw/v1/agents/pm-acl-a/events"]
    assert victim.received(1, timeout_s=0.5) == []
    evil = BrokerClient("pm-evil", "x", "agent-pm-evil", a.password_file)
    assert connect(secured, clients, evil).reason.value == NOT_AUTHORIZED


def test_an_agent_hears_only_what_is_sent_to_it(
    secured: SecuredBroker, pair: tuple[BrokerClient, BrokerClient], clients: list[Client]
) -> None:
    a, _ = pair
    collector = connect(secured, clients, secured.collector("c1"))
    mine = connect(secured, clients, a)
    granted = mine.subscribe(
        "sw/v1/agents/pm-acl-a/ack",
        "sw/v1/agents/pm-acl-a/config",
        "sw/v1/agents/pm-acl-a/cmd",
        "sw/v1/collectors/+/status",
        "sw/v1/agents/+/cmd",
    )
    assert granted == [1, 1, 1, 1, NOT_AUTHORIZED]
    # Accepted (0x10 "no matching subscribers" for what nobody may hear), never refused.
    for topic in ("sw/v1/agents/pm-acl-b/ack", "sw/v1/agents/pm-acl-b/cmd"):
        assert not collector.publish(topic).is_failure
    for topic in ("sw/v1/agents/pm-acl-a/ack", "sw/v1/collectors/c1/status"):
        assert not collector.publish(topic).is_failure
    assert mine.received(3, timeout_s=2.0) == [
        "sw/v1/agents/pm-acl-a/ack",
        "sw/v1/collectors/c1/status",
    ]


def test_a_payload_over_the_protocol_limit_is_refused_by_the_broker(
    secured: SecuredBroker, pair: tuple[BrokerClient, BrokerClient], clients: list[Client]
) -> None:
    a, _ = pair
    collector = connect(secured, clients, secured.collector("c1"))
    assert collector.subscribe(SHARED_EVENTS) == [1]
    box = connect(secured, clients, a)
    assert box.publish("sw/v1/agents/pm-acl-a/events", b"x" * MAX_PAYLOAD_BYTES).value == 0
    assert collector.received(1) == ["sw/v1/agents/pm-acl-a/events"]
    box.mqtt.publish("sw/v1/agents/pm-acl-a/events", b"x" * MAX_PACKET_BYTES, qos=1)
    closed = box.disconnects.get(timeout=10)
    assert closed.getName() == "Packet too large"
    assert collector.received(1, timeout_s=1.0) == []


def test_an_agent_enrolled_while_the_broker_runs_gets_in_at_once_and_after_a_restart(
    secured: SecuredBroker, clients: list[Client]
) -> None:
    late = secured.enrol_agent("pm-acl-late")
    assert not connect(secured, clients, late).reason.is_failure
    secured.restart()  # the plugin saved what it was told: no enrolment is lost
    collector = connect(secured, clients, secured.collector("c1"))
    assert collector.subscribe(SHARED_EVENTS) == [1]
    again = connect(secured, clients, late)
    assert not again.reason.is_failure
    assert again.publish("sw/v1/agents/pm-acl-late/events").value == 0
    assert collector.received(1) == ["sw/v1/agents/pm-acl-late/events"]


def test_rotating_a_stolen_boxs_password_throws_the_thief_out(
    secured: SecuredBroker, pair: tuple[BrokerClient, BrokerClient], clients: list[Client]
) -> None:
    a, _ = pair
    thief = connect(secured, clients, a)
    rotated = secured.enrol_agent("pm-acl-a", rotate=True)
    assert thief.disconnects.get(timeout=10).getName() == "Administrative action"
    assert connect(secured, clients, a).reason.value == NOT_AUTHORIZED
    assert not connect(secured, clients, rotated).reason.is_failure
    assert rotated.ack_key == a.ack_key  # derived: the collector signs as before


@pytest.mark.slow
def test_the_chain_runs_on_a_secured_broker_with_signed_acks(tmp_path: Path) -> None:
    """Real agent and collector processes, each with its own enrolled credentials."""
    stack = Stack(tmp_path / "stack", secured=True)
    stack.broker.start()
    stack.noc_token = stack.create_token(name="noc", role="noc")
    stack.start_collector()
    try:
        stack.wait_ready()
        agent = stack.add_agent(Path(__file__).parents[2] / "e2e" / "fixtures" / "fast-site.yaml")
        stack.wait_for_gpio(agent.agent_id)
        stack.set_contact(agent.agent_id, "door", alarm=True)
        alarms = wait_for(
            "the door alarm at the collector",
            lambda: stack.api("GET", "/api/v1/alarms?state=open&site_id=PM-TEST-0001").json()[
                "items"
            ],
            timeout_s=60,
        )
        assert [a["alarm_type"] for a in alarms] == ["door_open"]
        status: dict[str, Any] = wait_for(
            "the outbox emptied by signed acks",
            lambda: (
                (s := _check_json(agent.site_file)) and s["outbox"]["events_pending"] == 0 and s
            ),
        )
        assert status["acks_authenticated"] and status["acks_rejected"] == 0
    finally:
        stack.stop()
    logs = stack.collector.tail() + agent.process.tail()
    assert "Not authorized" not in logs and "not authorised" not in logs


def _check_json(site_file: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "check", "--config", str(site_file), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return dict(json.loads(done.stdout)) if done.stdout else {}
