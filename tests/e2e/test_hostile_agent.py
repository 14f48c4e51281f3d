"""A stolen or broken shelter box harms nobody but itself.

On mosquitto configured by enrolment (dynamic security), with the real collector and a real
agent B sending a steady stream of door alarms, the credentials of boxes at site A run the whole
attack menu, each attack with its own broker user so that none cancels another: a poison pill
and a depth bomb at 10 a second, alarms for B's site, a birth listing 1,800 alarms, a ``$share``
subscription, taking over B's and the collector's client ids, a forged ack for B, an oversized
payload. Each attack's effect is asserted on its own; then, overall: B loses and duplicates
nothing, its alarm lag stays under 5 s, no alarm or ticket at B's site comes from A, neither B
nor the collector is ever disconnected, and A's own site carries one ``agent_misbehaving`` alarm.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from collector.enrolment import ADMIN_PASSWORD_FILE
from collector.enrolment.control import DynsecControl
from protocol.acksig import ack_signature_valid, derive_ack_key
from protocol.messages import AckMessage
from simulators.secured_broker import BrokerClient
from simulators.stack import Stack
from tests.conftest import budget, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(budget(short=240, long=900))]

B_SITE_FILE = Path(__file__).resolve().parent / "fixtures" / "hostile-b.yaml"
B, B_SITE, A_SITE = "hostile-b", "PM-HOST-B", "PM-HOST-A"
ATTACK_S = budget(short=12, long=60)
BOMB_PER_S = 10
DOORS = [f"d{i}" for i in range(1, 13)]
ATTACKERS = [
    "a-poison",
    "a-depth",
    "a-foreign",
    "a-birth",
    "a-share",
    "a-takeover",
    "a-forger",
    "a-big",
]
NOT_AUTHORISED = 0x87


@dataclass
class Attacker:
    """One of A's broker users, connected with its own (bound) client id."""

    creds: BrokerClient
    client: mqtt.Client
    pubacks: dict[int, int] = field(default_factory=dict)
    disconnects: list[str] = field(default_factory=list)
    seq: int = 0

    def publish(self, channel: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish on one of its own channels (or a topic given whole); the message id."""
        topic = channel if "/" in channel else f"sw/v1/agents/{self.creds.username}/{channel}"
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return info.mid

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def _connect(
    broker: Stack, creds: BrokerClient, *, client_id: str | None = None
) -> tuple[mqtt.Client, list[ReasonCode], list[str]]:
    """A paho client with these credentials; its CONNACK reason and disconnect reasons."""
    connacks: list[ReasonCode] = []
    gone: list[str] = []
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or creds.client_id,
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(creds.username, creds.password)
    client.on_connect = lambda _c, _u, _f, rc, _p: connacks.append(rc)
    client.on_disconnect = lambda _c, _u, _f, rc, _p: gone.append(str(rc))
    client.connect(broker.broker.host, broker.broker.port)
    client.loop_start()
    wait_for("a CONNACK", lambda: connacks, timeout_s=10)
    return client, connacks, gone


def _attacker(stack: Stack, agent_id: str) -> Attacker:
    assert stack.secured is not None
    creds = stack.secured.enrol_agent(agent_id)
    client, connacks, gone = _connect(stack, creds)
    assert not connacks[0].is_failure, connacks
    attacker = Attacker(creds, client, disconnects=gone)

    def on_publish(_c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        attacker.pubacks[mid] = rc.value

    client.on_publish = on_publish
    return attacker


def _alarm(agent_id: str, seq: int, *, site: str, **fields: Any) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "kind": "alarm",
            "agent_id": agent_id,
            "stream_id": "a" * 32,
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(),
            "clock_synced": True,
            "site_id": site,
            "equipment_id": "fire-panel",
            "point": "relay",
            "alarm_type": "fire",
            "transition": "raised",
            "severity": "critical",
            **fields,
        }
    ).encode()


def _birth_bomb(agent_id: str) -> bytes:
    alarms = [
        {
            "equipment_id": f"eq-{i:04d}",
            "point": "p",
            "alarm_type": "fire",
            "severity": "critical",
            "since": "2026-01-05T08:00:00Z",
        }
        for i in range(1_800)
    ]
    body = {
        "v": 1,
        "kind": "birth",
        "agent_id": agent_id,
        "stream_id": "b" * 32,
        "seq": 0,
        "ts": datetime.now(UTC).isoformat(),
        "clock_synced": True,
        "site_id": A_SITE,
        "boot": 1,
        "agent_version": "x",
        "config_hash": "x",
        "alarms": alarms,
    }
    return json.dumps(body).encode()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    chain = Stack(tmp_path / "stack", secured=True)
    chain.broker.start()
    chain.noc_token = chain.create_token(name="noc", role="noc")
    chain.enrol_all({agent_id: A_SITE for agent_id in ATTACKERS})
    chain.start_collector()
    chain.wait_ready()
    try:
        yield chain
    finally:
        chain.stop()


class Spy:
    """A broker user of the test's own, allowed to read B's ack topic (through the plugin's
    control topic, as the enrolment admin): what reaches it, and whether B's key verifies it."""

    def __init__(self, stack: Stack) -> None:
        assert stack.secured is not None and stack.ack_secret is not None
        self.key = derive_ack_key(stack.ack_secret, B)
        self.genuine = 0
        self.forged: list[bytes] = []
        self.lock = threading.Lock()
        topic = f"sw/v1/agents/{B}/ack"
        password = secrets.token_urlsafe(16)
        admin = (stack.secured.collector_dir / ADMIN_PASSWORD_FILE).read_text().strip()
        with DynsecControl(stack.broker.host, stack.broker.port, password=admin) as control:
            control.run(
                [
                    {
                        "command": "createRole",
                        "rolename": "test-spy",
                        "acls": [
                            {"acltype": kind, "topic": topic, "allow": True}
                            for kind in ("subscribeLiteral", "publishClientReceive")
                        ],
                    },
                    {
                        "command": "createClient",
                        "username": "test-spy",
                        "password": password,
                        "clientid": "test-spy",
                        "roles": [{"rolename": "test-spy"}],
                    },
                ]
            )
        spy = BrokerClient("test-spy", password, "test-spy", Path("/nonexistent"))
        self.client, _, _ = _connect(stack, spy)
        self.client.on_message = self._on_message
        self.client.subscribe(topic, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        ack = AckMessage.model_validate_json(msg.payload)
        with self.lock:
            if ack_signature_valid(self.key, ack):
                self.genuine += 1
            else:
                self.forged.append(bytes(msg.payload))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_hostile_box_harms_nobody_but_itself(stack: Stack, tmp_path: Path) -> None:
    b = stack.add_agent(B_SITE_FILE)
    stack.wait_for_gpio(B)
    wait_for(
        "B reachable", lambda: stack.api("GET", f"/api/v1/sites/{B_SITE}/agent").json()["reachable"]
    )
    spy = Spy(stack)
    attackers = {agent_id: _attacker(stack, agent_id) for agent_id in ATTACKERS}
    sent: Counter[str] = Counter()
    toggles: list[tuple[str, bool, float]] = []
    doors_open = dict.fromkeys(DOORS, False)
    takeovers: list[ReasonCode] = []
    share_acks: list[list[int]] = []

    # -- the attacks that happen once ---------------------------------------------------
    share = attackers["a-share"]
    share.client.on_subscribe = lambda _c, _u, _m, rcs, _p: share_acks.append(
        [rc.value for rc in rcs]
    )
    share.client.subscribe("$share/shelterwatch/sw/v1/agents/+/events", qos=1)
    forger = attackers["a-forger"]
    forged = AckMessage(
        agent_id=B,
        stream_id=uuid.uuid4().hex,
        events_through=10_000,
        collector_id="c1",
        ts=datetime.now(UTC),
    )
    forged_mid = forger.publish(f"sw/v1/agents/{B}/ack", forged.model_dump_json().encode())
    birth = attackers["a-birth"]
    birth.publish("status", _birth_bomb("a-birth"), retain=True)
    sent["a-birth"] += 1
    big = attackers["a-big"]
    big.publish("events", b'{"pad": "' + b"x" * 300_000 + b'"}')

    # -- during the attack: B's doors open and close, the bombs and foreign alarms fly -----
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < ATTACK_S:
        tick += 1
        attackers["a-poison"].publish("events", b'{"v":1,"kind":[]}')
        sent["a-poison"] += 1
        attackers["a-depth"].publish("events", b"[" * 5_000 + b"]" * 5_000)
        sent["a-depth"] += 1
        if tick % BOMB_PER_S == 0:
            # Once a second: B's next door, a fire at B's site, a client-id takeover.
            door = DOORS[(tick // BOMB_PER_S) % len(DOORS)]
            opened = doors_open[door] = not doors_open[door]
            stack.set_contact(B, door, alarm=opened)
            toggles.append((door, opened, time.time()))
            foreign = attackers["a-foreign"]
            foreign.publish("events", _alarm("a-foreign", foreign.next_seq(), site=B_SITE))
            sent["a-foreign"] += 1
            target = f"agent-{B}" if tick // BOMB_PER_S % 2 else "collector-c1"
            creds = attackers["a-takeover"].creds
            thief, connack, _ = _connect(stack, creds, client_id=target)
            takeovers.extend(connack)
            thief.loop_stop()
            thief.disconnect()
        time.sleep(max(0.0, start + tick / BOMB_PER_S - time.monotonic()))

    # -- each attack's effect, on its own ----------------------------------------------
    engine = sa.create_engine(stack.db_url)

    def letters() -> dict[str, dict[str, int]]:
        with engine.connect() as db:
            rows = db.execute(
                sa.text(
                    "SELECT agent_id, reason, count(*) FROM dead_letters GROUP BY agent_id, reason"
                )
            )
            found: dict[str, dict[str, int]] = {}
            for agent_id, reason, n in rows:
                found.setdefault(agent_id, {})[reason] = n
            return found

    expected = {
        "a-poison": {"wrong_channel": sent["a-poison"]},
        "a-depth": {"too_deep": sent["a-depth"]},
        "a-foreign": {"foreign_site": sent["a-foreign"]},
        "a-birth": {"invalid": 1},
    }
    wait_for("every attack dead-lettered", lambda: letters() == expected, timeout_s=60)
    assert share_acks == [[NOT_AUTHORISED]]  # $share refused by the broker's plugin
    assert takeovers and all(rc.is_failure for rc in takeovers)  # foreign client ids refused
    wait_for("the forged ack's PUBACK", lambda: forged_mid in forger.pubacks, timeout_s=10)
    assert forger.pubacks[forged_mid] == NOT_AUTHORISED  # refused, never delivered
    assert big.disconnects  # the oversized packet cost its sender its connection
    assert "a-big" not in letters()

    # -- overall: B lost nothing, duplicated nothing, waited little ----------------------
    wait_for(
        "B's door alarms all applied",
        lambda: _b_transitions(engine) >= len(toggles),
        timeout_s=60,
    )
    assert _b_transitions(engine) == len(toggles)  # each transition once
    with engine.connect() as db:
        applied, stored, distinct = db.execute(
            sa.text(
                "SELECT s.applied_through, count(e.seq), count(DISTINCT e.seq) FROM streams s"
                " JOIN inbound_events e ON e.agent_id = s.agent_id AND e.stream_id = s.stream_id"
                " WHERE s.agent_id = :b GROUP BY s.applied_through"
            ),
            {"b": B},
        ).one()
        equipment_at_b = set(
            db.execute(
                sa.text("SELECT DISTINCT equipment_id FROM alarms WHERE site_id = :s"),
                {"s": B_SITE},
            ).scalars()
        )
        tickets_at_b = (
            db.execute(
                sa.text("SELECT alarm_identity FROM tickets WHERE site_id = :s"), {"s": B_SITE}
            )
            .scalars()
            .all()
        )
        misbehaving = db.execute(
            sa.text(
                "SELECT site_id, count FROM alarms WHERE alarm_type = 'agent_misbehaving'"
                " AND state != 'cleared'"
            )
        ).all()
        feed = db.execute(
            sa.text("SELECT at, payload FROM change_events WHERE kind = 'alarm' AND site_id = :s"),
            {"s": B_SITE},
        ).all()
    engine.dispose()
    assert applied == stored == distinct >= len(toggles)
    assert equipment_at_b == {"doors"}  # nothing A said about B's site became an alarm
    assert tickets_at_b and all(f"{B_SITE}/doors/" in (ref or "") for ref in tickets_at_b)
    refused = sum(sum(by_reason.values()) for by_reason in expected.values())
    assert misbehaving == [(A_SITE, refused)]
    lags = _lags(toggles, feed)
    assert len(lags) == len(toggles)
    assert sorted(lags)[int(len(lags) * 0.99) - 1 if len(lags) > 1 else 0] <= 5.0, lags
    # B and the collector were never cut off; B's outbox kept everything until acked.
    log_b = b.process.log_path.read_text()
    assert log_b.count("connected to broker; birth published") == 1, log_b[-2000:]
    assert "disconnected from broker" not in log_b
    assert "lost the broker" not in stack.collector.log_path.read_text()
    assert spy.genuine >= 1 and spy.forged == []
    spy.close()
    for attacker in attackers.values():
        attacker.client.loop_stop()
        attacker.client.disconnect()


def _b_transitions(engine: sa.Engine) -> int:
    with engine.connect() as db:
        return int(
            db.execute(
                sa.text(
                    "SELECT count(*) FROM alarm_history h JOIN alarms a ON a.id = h.alarm_id"
                    " WHERE a.site_id = :s AND h.change IN ('raised', 'reraised', 'cleared')"
                ),
                {"s": B_SITE},
            ).scalar_one()
        )


def _lags(toggles: list[tuple[str, bool, float]], feed: list[Any]) -> list[float]:
    """For each door toggled, how long until the collector applied it (its feed entry)."""
    changes = sorted(
        (at.timestamp() if isinstance(at, datetime) else _parse(at), json.loads(payload))
        for at, payload in feed
    )
    lags: list[float] = []
    used: set[int] = set()
    for door, opened, at in toggles:
        wanted = ("raised", "reraised") if opened else ("cleared",)
        for i, (when, change) in enumerate(changes):
            if i in used or change["point"] != door or change["change"] not in wanted:
                continue
            if when >= at - 0.5:
                used.add(i)
                lags.append(when - at)
                break
    return lags


def _parse(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
