"""What enrolment writes, enforced by a real mosquitto: the enrolled agent gets in with its
password and only onto its own topics; the collector's user runs the whole chain."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cli.main import main
from simulators.broker import MosquittoProcess, free_port
from simulators.processes import ChildProcess, cli_argv
from tests.conftest import wait_for

pytestmark = pytest.mark.mqtt

NOT_AUTHORIZED = 0x87


@dataclass
class Enrolled:
    broker: MosquittoProcess
    root: Path

    def password(self, who: str) -> str:
        name = "collector/collector-mqtt-password" if who == "collector" else f"{who}/mqtt-password"
        return (self.root / name).read_text().strip()


@pytest.fixture
def enrolled(tmp_path: Path) -> Iterator[Enrolled]:
    files = ["--broker-passwd", str(tmp_path / "passwd"), "--broker-acl", str(tmp_path / "acl")]
    assert main(["collector", "enrol-collector", "--out", str(tmp_path / "collector"), *files]) == 0
    for agent, site in (("pm-acl-a", "PM-ACL-A"), ("pm-acl-b", "PM-ACL-B")):
        argv = ["--agent-id", agent, "--site-id", site, "--site-kind", "pm"]
        out = ["--out", str(tmp_path / agent), "--broker", "127.0.0.1:1883"]
        assert main(["collector", "enrol-agent", *argv, *out, *files]) == 0
    broker = MosquittoProcess(
        tmp_path / "broker", password_file=tmp_path / "passwd", acl_file=tmp_path / "acl"
    )
    broker.start()
    try:
        yield Enrolled(broker, tmp_path)
    finally:
        broker.kill()


class Client:
    """A paho MQTT 5 client recording its CONNACK, PUBACKs and messages."""

    def __init__(self, broker: MosquittoProcess, user: str, password: str) -> None:
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.pubacks: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed = threading.Event()
        self.mqtt = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-{user}",
            protocol=mqtt.MQTTv5,
        )
        self.mqtt.username_pw_set(user, password)
        self.mqtt.on_connect = lambda _c, _u, _f, rc, _p: self.connack.put(rc)
        self.mqtt.on_publish = lambda _c, _u, _mid, rc, _p: self.pubacks.put(rc)
        self.mqtt.on_subscribe = lambda *_a: self.subscribed.set()
        self.mqtt.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.mqtt.connect(broker.host, broker.port)
        self.mqtt.loop_start()
        self.reason = self.connack.get(timeout=10)

    def publish(self, topic: str) -> ReasonCode:
        self.mqtt.publish(topic, b"{}", qos=1)
        return self.pubacks.get(timeout=10)

    def subscribe(self, *topics: str) -> None:
        self.subscribed.clear()
        self.mqtt.subscribe([(t, 1) for t in topics])
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


@pytest.fixture
def clients(enrolled: Enrolled) -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def connect(enrolled: Enrolled, clients: list[Client], user: str, password: str) -> Client:
    client = Client(enrolled.broker, user, password)
    clients.append(client)
    return client


def test_the_enrolled_password_gets_in_and_a_wrong_one_does_not(
    enrolled: Enrolled, clients: list[Client]
) -> None:
    good = connect(enrolled, clients, "pm-acl-a", enrolled.password("pm-acl-a"))
    assert not good.reason.is_failure
    wrong = connect(enrolled, clients, "pm-acl-a", enrolled.password("pm-acl-b"))
    assert wrong.reason.value == NOT_AUTHORIZED
    stranger = connect(enrolled, clients, "pm-acl-c", "anything")
    assert stranger.reason.value == NOT_AUTHORIZED


# Another agent's channels, the channels the collector publishes, a collector's status.
FOREIGN = [
    "sw/v1/agents/pm-acl-b/events",
    "sw/v1/agents/pm-acl-b/status",
    "sw/v1/agents/pm-acl-a/ack",
    "sw/v1/agents/pm-acl-a/config",
    "sw/v1/collectors/c1/status",
]


def test_an_agent_publishing_off_its_own_topics_is_refused_with_0x87(
    enrolled: Enrolled, clients: list[Client]
) -> None:
    collector = connect(enrolled, clients, "collector", enrolled.password("collector"))
    collector.subscribe("$share/shelterwatch/sw/v1/agents/+/events")
    a_password = enrolled.password("pm-acl-a")
    # A fresh connection per refusal: mosquitto 2.0.11 with max_queued_messages 0 (as in
    # simulators/broker.py) closes the connection right after the 0x87 PUBACK.
    refused = [connect(enrolled, clients, "pm-acl-a", a_password).publish(t) for t in FOREIGN]
    assert [r.value for r in refused] == [NOT_AUTHORIZED] * len(FOREIGN)
    assert (
        connect(enrolled, clients, "pm-acl-a", a_password)
        .publish("sw/v1/agents/pm-acl-a/events")
        .value
        == 0
    )
    assert collector.messages.get(timeout=10)[0] == "sw/v1/agents/pm-acl-a/events"
    assert collector.messages.empty()  # nothing of b's reached it from a


def test_an_agent_hears_only_what_is_sent_to_it(enrolled: Enrolled, clients: list[Client]) -> None:
    a = connect(enrolled, clients, "pm-acl-a", enrolled.password("pm-acl-a"))
    b = connect(enrolled, clients, "pm-acl-b", enrolled.password("pm-acl-b"))
    collector = connect(enrolled, clients, "collector", enrolled.password("collector"))
    a.subscribe("sw/v1/agents/pm-acl-a/ack", "sw/v1/agents/pm-acl-b/ack", "sw/v1/agents/+/cmd")
    b.subscribe("sw/v1/agents/pm-acl-b/ack")
    for topic in ("sw/v1/agents/pm-acl-b/ack", "sw/v1/agents/pm-acl-b/cmd"):
        assert collector.publish(topic).value == 0
    assert collector.publish("sw/v1/agents/pm-acl-a/ack").value == 0
    assert b.messages.get(timeout=10)[0] == "sw/v1/agents/pm-acl-b/ack"
    # a asked for b's ack and everyone's cmd too, and hears only its own ack
    assert a.messages.get(timeout=10)[0] == "sw/v1/agents/pm-acl-a/ack"
    assert a.messages.empty()


def test_an_enrolled_agent_and_collector_run_the_chain(enrolled: Enrolled) -> None:
    """The skeleton (pointed at the test broker) and the collector's user, as real processes."""
    root = enrolled.root
    site: dict[str, Any] = yaml.safe_load((root / "pm-acl-a" / "site.yaml").read_text())
    site["mqtt"].update(
        port=enrolled.broker.port, password_file=str(root / "pm-acl-a" / "mqtt-password")
    )
    site["outbox"]["path"] = str(root / "pm-acl-a" / "outbox.db")
    (root / "site.yaml").write_text(yaml.safe_dump(site))
    db = f"sqlite:///{root / 'collector.db'}"
    http_port = free_port()
    collector = ChildProcess(
        "collector",
        cli_argv(
            "collector",
            "run",
            "--db",
            db,
            "--broker",
            f"127.0.0.1:{enrolled.broker.port}",
            "--http",
            f"127.0.0.1:{http_port}",
            "--broker-user",
            "collector",
            "--broker-password-file",
            str(root / "collector" / "collector-mqtt-password"),
        ),
        log_path=root / "collector.log",
    )
    agent = ChildProcess(
        "agent",
        cli_argv("agent", "run", "--config", str(root / "site.yaml")),
        log_path=root / "agent.log",
    )
    collector.start()
    agent.start()
    try:
        token = _noc_token(db)
        agents = wait_for(
            "the agent reachable at the collector",
            lambda: _reachable(http_port, token),
            timeout_s=60,  # two processes starting on a loaded CI machine
        )
        assert agents == ["pm-acl-a"]
    finally:
        agent.stop()
        collector.stop()
        print(f"agent log:\n{agent.tail()}\ncollector log:\n{collector.tail()}")  # on failure
    assert "Not authorized" not in agent.tail() + collector.tail()


def _noc_token(db: str) -> str:
    from clocks import SystemClock
    from collector.access import Role
    from collector.api.auth import create_user
    from collector.process import prepare_database

    factory = prepare_database(db)
    with factory() as session:
        _, token = create_user(session, name="noc", role=Role.NOC, now=SystemClock().now())
        session.commit()
    factory.kw["bind"].dispose()
    return token


def _reachable(port: int, token: str) -> list[str]:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/agents",
            headers={"Authorization": f"Bearer {token}"},
            timeout=2,
        )
    except httpx.HTTPError:
        return []
    return [a["agent_id"] for a in response.json() if a["reachable"]] if response.is_success else []
