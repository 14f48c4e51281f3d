"""Ingest benchmark: 20,000 agent identities through mosquitto into the collector on SQLite.

Run: ``.venv/bin/python -m benchmarks.ingest`` (about ten minutes; ``--help`` for the knobs).

Phases, all in one run against a private mosquitto and a real collector process:

1. warm-up: every identity sends its birth; the collector registers 20,000 agents.
   From then on every identity sends its heartbeat once a minute (333 msg/s for 20,000),
   which the collector processes but does not ack; they are not counted below.
2. live: the generator offers ``--rate`` messages/s for ``--duration`` s (telemetry batches,
   1 % alarm transitions); each message's lag is publish -> the collector's ack (the ack is
   published only after the SQL commit). ``sustained_msgs_per_s`` counts committed and acked
   messages over the phase, drain included.
3. storm: 2,000 sites raise 5 alarms each within 60 s (mains lost and its symptoms, plus an
   air-conditioning fault); then the database says what was lost, duplicated or grouped.
4. raw ceiling: the same pre-queued backlog of 200,000 messages is drained first by a trivial
   paho subscriber, then by the collector (counted at ack); ``ratio_to_raw`` compares the two.

The identities share ``--connections`` MQTT connections (a process is capped at 20,000 open
files here). The last line printed is one JSON object.

The machine is shared: besides the rates, each phase reports the CPU the collector used per
message (its process and its MQTT gateway process, from /proc), which other work running at
the same time changes much less, and the load average when the phase ended.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks._machine import print_machine
from protocol import decode
from protocol.topics import Channel, agent_subscription, agent_topic
from simulators.stack import Stack

STORM_ALARMS = (
    ("power", "mains", "mains_lost", "major"),
    ("power", "battery", "on_battery", "minor"),
    ("power", "battery-level", "battery_low", "critical"),
    ("env-1", "temperature", "temp_high", "major"),
    ("hvac-1", "fault", "hvac_fault", "major"),
)


def _ts() -> str:
    return datetime.now(UTC).isoformat()


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def collector_cpu_s(stack: Stack) -> float:
    """CPU seconds used so far by the collector process and its children (the MQTT gateway)."""
    root = stack.collector.pid
    if root is None:
        return 0.0
    pids = [root]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == root:
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue  # gone meanwhile
    total = 0.0
    for pid in pids:
        try:
            total += _proc_cpu_s(pid)
        except OSError:
            continue
    return total


def _per_msg_ms(cpu_s: float, count: int) -> float:
    return round(cpu_s * 1000 / max(count, 1), 3)


def _load_1m() -> float:
    return round(os.getloadavg()[0], 2)


@dataclass
class Identity:
    """One virtual agent: its own stream, gapless event seqs and telemetry seqs."""

    agent_id: str
    site_id: str
    stream_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    event_seq: int = 0
    telemetry_seq: int = 0
    door_open: bool = False

    def _envelope(self, kind: str, seq: int) -> dict[str, Any]:
        return {
            "v": 1,
            "kind": kind,
            "agent_id": self.agent_id,
            "stream_id": self.stream_id,
            "seq": seq,
            "ts": _ts(),
            "clock_synced": True,
            "site_id": self.site_id,
        }

    def birth(self) -> bytes:
        body = self._envelope("birth", self.event_seq)
        body.update(boot=1, agent_version="bench", config_hash="sha256:bench", alarms=[])
        return json.dumps(body).encode()

    def heartbeat(self) -> bytes:
        body = self._envelope("heartbeat", self.event_seq)
        body.update(
            boot=1,
            config_hash="sha256:bench",
            outbox={"events_pending": 0, "telemetry_pending": 0},
            devices=[{"device_id": "env-1", "ok": True}],
        )
        return json.dumps(body).encode()

    def telemetry(self, value: float) -> tuple[int, bytes]:
        self.telemetry_seq += 1
        body = self._envelope("telemetry", self.telemetry_seq)
        body["samples"] = [
            {
                "equipment_id": "env-1",
                "point": point,
                "value": value + i,
                "unit": "degC",
                "ts": _ts(),
            }
            for i, point in enumerate(("temperature", "humidity", "dc-voltage"))
        ]
        return self.telemetry_seq, json.dumps(body).encode()

    def alarm(
        self, equipment: str, point: str, alarm_type: str, severity: str, *, raised: bool
    ) -> tuple[int, bytes]:
        self.event_seq += 1
        body = self._envelope("alarm", self.event_seq)
        body.update(
            equipment_id=equipment,
            point=point,
            alarm_type=alarm_type,
            transition="raised" if raised else "cleared",
            severity=severity,
            reason="benchmark",
        )
        return self.event_seq, json.dumps(body).encode()


class AckWatcher:
    """Subscribed to every ack: records when each published message was acknowledged."""

    def __init__(self, host: str, port: int) -> None:
        self._lock = threading.Lock()
        # (agent_id, channel, seq) -> publish time (monotonic)
        self.pending: dict[tuple[str, str, int], float] = {}
        self.lags: list[float] = []
        self.acked = 0
        self.last_ack = 0.0
        self._events_through: dict[str, int] = {}
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bench-acks-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.max_inflight_messages_set(100)
        self.reconnects = -1
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        # A persistent session, subscribed again on every connect: a starved network thread
        # that misses its keepalive must not lose the acks published meanwhile.
        _connect_persistent(self._client, host, port)
        self._client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        self.reconnects += 1
        client.subscribe(agent_subscription(Channel.ACK), qos=1)

    def expect(self, agent_id: str, channel: str, seq: int) -> None:
        with self._lock:
            self.pending[(agent_id, channel, seq)] = time.monotonic()

    def reset_lags(self) -> None:
        with self._lock:
            self.lags = []

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        ack = json.loads(msg.payload)
        agent = ack["agent_id"]
        with self._lock:
            start = self._events_through.get(agent, 0)
            for seq in range(start + 1, ack["events_through"] + 1):
                self._done(agent, "events", seq, now)
            self._events_through[agent] = max(start, ack["events_through"])
            for r in ack["telemetry"]:
                for seq in range(r["first"], r["last"] + 1):
                    self._done(agent, "telemetry", seq, now)

    def _done(self, agent: str, channel: str, seq: int, now: float) -> None:
        sent = self.pending.pop((agent, channel, seq), None)
        if sent is not None:
            self.lags.append(now - sent)
            self.acked += 1
            self.last_ack = now

    def wait_drained(self, timeout_s: float) -> int:
        """Wait until everything expected is acked; returns how many are still pending."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self.pending:
                    return 0
            time.sleep(0.2)
        with self._lock:
            return len(self.pending)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class Publisher:
    """A few shared MQTT connections carrying every identity's messages (QoS 1)."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.clients = []
        for i in range(connections):
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"bench-pub-{i}-{uuid.uuid4().hex[:6]}",
                protocol=mqtt.MQTTv5,
            )
            client.max_inflight_messages_set(2000)
            client.max_queued_messages_set(0)
            client.connect(host, port)
            client.loop_start()
            self.clients.append(client)
        self.sent = 0
        self._last: dict[int, mqtt.MQTTMessageInfo] = {}

    def publish(self, index: int, topic: str, payload: bytes, *, retain: bool = False) -> None:
        slot = index % len(self.clients)
        self._last[slot] = self.clients[slot].publish(topic, payload, qos=1, retain=retain)
        self.sent += 1

    def flush(self, timeout_s: float = 120.0) -> None:
        """Wait until the broker acknowledged the last message of every connection."""
        for info in self._last.values():
            info.wait_for_publish(timeout_s)

    def close(self) -> None:
        for client in self.clients:
            client.loop_stop()
            client.disconnect()


class Heartbeats:
    """Every identity's heartbeat once a period, spread evenly, for the whole run (as real
    agents do: without them the collector rightly declares the fleet unreachable)."""

    def __init__(self, pub: Publisher, identities: list[Identity], period_s: float) -> None:
        self._pub = pub
        self._identities = identities
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        rate = len(self._identities) / self._period
        start = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * rate)
            while sent < due:
                index = sent % len(self._identities)
                ident = self._identities[index]
                topic = agent_topic(ident.agent_id, Channel.HEARTBEAT)
                self._pub.publish(index, topic, ident.heartbeat())
                sent += 1
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _paced(rate: float, duration_s: float) -> Iterator[int]:
    """Yield message indexes at ``rate`` per second for ``duration_s`` (open loop)."""
    start = time.monotonic()
    sent = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= duration_s:
            return
        due = int(elapsed * rate)
        while sent < due:
            yield sent
            sent += 1
        time.sleep(0.002)


def warm_up(pub: Publisher, identities: list[Identity], db_path: Path, timeout_s: float) -> float:
    """Every identity's birth; returns how long the collector took to register them all."""
    start = time.monotonic()
    for i, ident in enumerate(identities):
        pub.publish(i, agent_topic(ident.agent_id, Channel.STATUS), ident.birth(), retain=True)
    pub.flush()
    while time.monotonic() - start < timeout_s:
        if _count(db_path, "SELECT COUNT(*) FROM streams") >= len(identities):
            break
        time.sleep(0.5)
    return time.monotonic() - start


def _count(db_path: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


# Once a TypeError inside decoding that discarded the whole batch it came in.
POISON = b'{"v":1,"kind":[]}'


def send_one(
    pub: Publisher,
    watcher: AckWatcher,
    identities: list[Identity],
    n: int,
    rng: random.Random,
    alarm_share: float,
) -> None:
    """The n-th message of steady traffic: mostly telemetry, some door alarms."""
    index = n % len(identities)
    ident = identities[index]
    if rng.random() < alarm_share:
        ident.door_open = not ident.door_open
        seq, payload = ident.alarm("contacts", "door", "door_open", "major", raised=ident.door_open)
        watcher.expect(ident.agent_id, "events", seq)
        pub.publish(index, agent_topic(ident.agent_id, Channel.EVENTS), payload)
    else:
        seq, payload = ident.telemetry(20.0 + rng.random())
        watcher.expect(ident.agent_id, "telemetry", seq)
        pub.publish(index, agent_topic(ident.agent_id, Channel.TELEMETRY), payload)


def live(
    stack: Stack,
    pub: Publisher,
    watcher: AckWatcher,
    identities: list[Identity],
    *,
    rate: float,
    duration_s: float,
    drain_s: float,
    poison_per_s: float = 0.0,
) -> dict[str, float]:
    """Open-loop steady traffic; lag and sustained throughput counted at ack. With
    ``poison_per_s``, one identity also sends a poison pill that often (dead-lettered, never
    acked: it must cost the others nothing)."""
    rng = random.Random(7)
    watcher.reset_lags()
    acked_before = watcher.acked
    cpu_before = collector_cpu_s(stack)
    start = time.monotonic()
    offered = 0
    poison_every = int(rate / poison_per_s) if poison_per_s else 0
    poisoned = 0
    for n in _paced(rate, duration_s):
        send_one(pub, watcher, identities, n, rng, alarm_share=0.01)
        offered += 1
        if poison_every and n % poison_every == 0:
            pub.publish(0, agent_topic(identities[0].agent_id, Channel.EVENTS), POISON)
            poisoned += 1
    offered_s = time.monotonic() - start
    unacked = watcher.wait_drained(drain_s)
    acked = watcher.acked - acked_before
    span = max(watcher.last_ack - start, 1e-9)
    return {
        "offered_msgs_per_s": round(offered / offered_s, 1),
        "sustained_msgs_per_s": round(acked / span, 1),
        "lag_p50_s": round(_percentile(watcher.lags, 0.50), 3),
        "lag_p99_s": round(_percentile(watcher.lags, 0.99), 3),
        "live_unacked": unacked,
        "live_poison_sent": poisoned,
        # Heartbeats included in the CPU, not in the count.
        "live_collector_cpu_ms_per_msg": _per_msg_ms(collector_cpu_s(stack) - cpu_before, acked),
        "live_load_1m": _load_1m(),
    }


def storm(
    stack: Stack,
    pub: Publisher,
    watcher: AckWatcher,
    identities: list[Identity],
    db_path: Path,
    *,
    sites: int,
    window_s: float,
    drain_s: float,
) -> dict[str, float]:
    """``sites`` sites raise 5 alarms each within ``window_s``; then read the outcome."""
    watcher.reset_lags()
    cpu_before = collector_cpu_s(stack)
    chosen = identities[:sites]
    schedule = sorted(
        (random.uniform(0, window_s), i, k) for i in range(len(chosen)) for k in range(5)
    )
    # Per site, its five alarms go out in seq order whatever their drawn times.
    next_k = [0] * len(chosen)
    start = time.monotonic()
    for at, i, _k in schedule:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ident = chosen[i]
        equipment, point, alarm_type, severity = STORM_ALARMS[next_k[i]]
        next_k[i] += 1
        seq, payload = ident.alarm(equipment, point, alarm_type, severity, raised=True)
        watcher.expect(ident.agent_id, "events", seq)
        pub.publish(i, agent_topic(ident.agent_id, Channel.EVENTS), payload)
    unacked = watcher.wait_drained(drain_s)
    cpu_s = collector_cpu_s(stack) - cpu_before
    expected = {(ident.site_id, a[0], a[1], a[2]) for ident in chosen for a in STORM_ALARMS}
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        stored = set(
            conn.execute("SELECT site_id, equipment_id, point, alarm_type FROM alarms").fetchall()
        )
        duplicates = conn.execute(
            "SELECT COUNT(*) FROM (SELECT alarm_identity FROM tickets"
            " WHERE alarm_identity IS NOT NULL AND state NOT IN ('closed', 'cancelled')"
            " GROUP BY alarm_identity HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        generic = conn.execute(
            "SELECT COUNT(*) FROM tickets WHERE kind = 'generic_incident'"
        ).fetchone()[0]
    return {
        "storm_alarms_sent": len(expected),
        "storm_lost": len(expected - stored),
        "storm_unacked": unacked,
        "storm_duplicate_tickets": int(duplicates),
        "storm_generic_incidents": int(generic),
        "storm_lag_p50_s": round(_percentile(watcher.lags, 0.50), 3),
        "storm_lag_p99_s": round(_percentile(watcher.lags, 0.99), 3),
        "storm_collector_cpu_ms_per_alarm": _per_msg_ms(cpu_s, len(expected)),
        "storm_load_1m": _load_1m(),
    }


def _raw_subscriber(host: str, port: int) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-raw-subscriber",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    return client


def _connect_persistent(client: mqtt.Client, host: str, port: int) -> None:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(host, port, clean_start=False, properties=props)


def raw_ceiling(
    stack: Stack,
    pub: Publisher,
    watcher: AckWatcher,
    identities: list[Identity],
    *,
    backlog: int,
    drain_s: float,
) -> dict[str, float]:
    """The same backlog drained by a trivial subscriber, then by the collector."""
    host, port = stack.broker.host, stack.broker.port
    received = 0
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received >= backlog:
            done.set()

    raw = _raw_subscriber(host, port)
    raw.on_message = on_message
    _connect_persistent(raw, host, port)
    raw.loop_start()
    raw.subscribe(
        [(agent_subscription(Channel.EVENTS), 1), (agent_subscription(Channel.TELEMETRY), 1)]
    )
    time.sleep(1.0)
    raw.loop_stop()
    raw.disconnect()
    stack.collector.stop()  # its persistent session keeps queueing for it
    rng = random.Random(11)
    watcher.reset_lags()
    acked_before = watcher.acked
    for n in range(backlog):
        send_one(pub, watcher, identities, n, rng, alarm_share=0.01)
    pub.flush()
    time.sleep(2.0)  # let mosquitto settle its queues before the clock starts
    raw = _raw_subscriber(host, port)
    raw.on_message = on_message
    start = time.monotonic()
    _connect_persistent(raw, host, port)
    raw.loop_start()
    done.wait(drain_s)
    raw_s = time.monotonic() - start
    raw.loop_stop()
    raw.disconnect()
    start = time.monotonic()
    stack.collector.start()
    unacked = watcher.wait_drained(drain_s)
    cpu_s = collector_cpu_s(stack)  # a new process: all of it is the drain (and its start)
    collector_s = watcher.last_ack - start
    acked = watcher.acked - acked_before
    raw_rate = received / raw_s
    collector_rate = acked / max(collector_s, 1e-9)
    return {
        "backlog": backlog,
        "raw_received": received,
        "raw_ceiling_msgs_per_s": round(raw_rate, 1),
        "backlog_collector_msgs_per_s": round(collector_rate, 1),
        "backlog_unacked": unacked,
        "ratio_to_raw": round(collector_rate / raw_rate, 3),
        "backlog_collector_cpu_ms_per_msg": _per_msg_ms(cpu_s, acked),
        "backlog_load_1m": _load_1m(),
    }


def main() -> None:
    """Run every phase and print the figures; the last line is one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=4_000.0, help="offered msgs/s (live)")
    parser.add_argument("--duration", type=float, default=60.0, help="live phase, seconds")
    parser.add_argument("--storm-sites", type=int, default=2_000)
    parser.add_argument("--storm-window", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--drain", type=float, default=300.0, help="max wait for acks, seconds")
    parser.add_argument("--heartbeat-s", type=float, default=60.0, help="each agent's period")
    parser.add_argument(
        "--poison-rate",
        type=float,
        default=0.0,
        help="poison pills a second from one agent during the live phase (dead-lettered)",
    )
    args = parser.parse_args()
    print_machine()
    identities = [
        Identity(agent_id=f"bench-{i:05d}", site_id=f"PM-B{i:05d}") for i in range(args.identities)
    ]
    # The generator's payloads are the real contract: check one of each kind.
    sample = Identity("bench-check", "PM-CHECK")
    decode(agent_topic(sample.agent_id, Channel.STATUS), sample.birth())
    decode(agent_topic(sample.agent_id, Channel.TELEMETRY), sample.telemetry(1.0)[1])
    alarm = sample.alarm("e", "p", "door_open", "major", raised=True)[1]
    decode(agent_topic(sample.agent_id, Channel.EVENTS), alarm)
    with tempfile.TemporaryDirectory(prefix="sw-bench-ingest-") as tmp:
        stack = Stack(Path(tmp))
        db_path = Path(tmp) / "collector.db"
        stack.broker.start()
        # The collector admits enrolled agents only: the benchmark's are, like a fleet's.
        stack.enrol_all({ident.agent_id: ident.site_id for ident in identities})
        stack.start_collector()
        pub = Publisher(stack.broker.host, stack.broker.port, args.connections)
        watcher = AckWatcher(stack.broker.host, stack.broker.port)
        figures: dict[str, float] = {"identities": args.identities}
        heartbeats = Heartbeats(pub, identities, args.heartbeat_s)
        try:
            figures["warm_up_s"] = round(warm_up(pub, identities, db_path, args.drain), 1)
            heartbeats.start()
            print("warm-up done", figures, flush=True)
            figures |= live(
                stack,
                pub,
                watcher,
                identities,
                rate=args.rate,
                duration_s=args.duration,
                drain_s=args.drain,
                poison_per_s=args.poison_rate,
            )
            print("live done", figures, flush=True)
            figures |= storm(
                stack,
                pub,
                watcher,
                identities,
                db_path,
                sites=args.storm_sites,
                window_s=args.storm_window,
                drain_s=args.drain,
            )
            print("storm done", figures, flush=True)
            figures |= raw_ceiling(
                stack, pub, watcher, identities, backlog=args.backlog, drain_s=args.drain
            )
            # Nothing the benchmark sent may have been refused (a refusal is no throughput):
            # the dead letters are the poison pills, if any, and nothing else.
            figures["dead_letters"] = _count(db_path, "SELECT COUNT(*) FROM dead_letters")
        finally:
            heartbeats.stop()
            watcher.close()
            pub.close()
            stack.stop()
    if figures["dead_letters"] != figures.get("live_poison_sent", 0):
        raise SystemExit(f"messages refused by the collector: {figures}")
    figures["ack_watcher_reconnects"] = watcher.reconnects
    figures["ratio_sustained_to_raw"] = round(
        figures["sustained_msgs_per_s"] / figures["raw_ceiling_msgs_per_s"], 3
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
