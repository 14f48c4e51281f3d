"""The agent's MQTT link: persistent MQTT 5 session, birth/Will, heartbeats, paced publishing.

paho runs in a network thread this class supervises; everything that touches the outbox runs
on the asyncio loop (callbacks are handed over with ``call_soon_threadsafe``), so the outbox
has a single writer.

Who sends what, once: a publish the broker has not acknowledged (PUBACK) stays in paho's
session store and paho sends it again after a reconnect; the link itself sends again only
what the broker acknowledged but the collector did not (after a reconnect, when a collector
comes online, after the re-send timeout). The broker's silence while it owes an answer is how
a half-open link is found (``agent.link.wire``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from agent.buffer import Outbox
from agent.buffer.outbox import OutboxItem
from agent.link.backoff import FullJitterBackoff
from agent.link.clockoffset import OffsetEstimator
from agent.link.wire import Key, Wire
from agent.tasks import TaskHandle, TaskStarter, start_plain
from clocks import Clock
from protocol import (
    AckMessage,
    AlarmSnapshot,
    BirthMessage,
    Channel,
    CollectorStatus,
    CommandMessage,
    ConfigMessage,
    DeviceHealth,
    HeartbeatMessage,
    ListenerHealth,
    WillMessage,
    agent_topic,
    encode,
)
from protocol.acksig import ack_signature_valid
from protocol.topics import COLLECTOR_STATUS_FILTER, collector_id_from_status_topic
from siteconfig.mqtt import LinkSettings

log = logging.getLogger(__name__)

# MQTT 5 DISCONNECT reason 0x04: the broker publishes the Will although we leave cleanly, so the
# collector learns that the site is no longer watched.
DISCONNECT_WITH_WILL = 4
TICK_S = 0.2
MAX_RESEND_S = 300.0
# How often the link checks that the broker answers.
WATCH_S = 0.5
# paho's own in-flight cap, above the link's window: births and heartbeats are not counted in it.
PAHO_INFLIGHT_EXTRA = 16
# A forger may publish acks by the thousand: one log line a minute says how many.
REJECT_LOG_EVERY_S = 60.0
# A task loop that has not turned for this long is stuck (the heartbeat's adds its period).
STALL_AFTER_S = 30.0


class StatusProvider(Protocol):
    """What the rest of the agent tells the link for births and heartbeats."""

    def alarm_snapshot(self) -> list[AlarmSnapshot]:
        """Alarms currently active at the edge."""
        ...

    def config_hash(self) -> str:
        """Hash of the applied configuration."""
        ...

    def device_health(self) -> list[DeviceHealth]:
        """Poll health per device."""
        ...

    def traps_rejected(self) -> int:
        """Traps refused by the listener since start."""
        ...

    def config_error(self) -> str | None:
        """Why the last configuration offered was refused (None: it runs)."""
        ...

    def listener_health(self) -> list[ListenerHealth]:
        """Each listener's address and counts since start."""
        ...

    def clock_synced(self) -> bool:
        """Whether the edge clock is synchronised."""
        ...


@dataclass
class LinkStatus:
    """What ``shelterwatch agent check`` and the tests read."""

    connected: bool = False
    collector_up: bool = False
    last_ack_mono: float | None = None
    connects: int = 0
    published: int = 0
    # Connections dropped because the broker stopped answering (a half-open link).
    half_open_drops: int = 0
    # Acks refused since start: bad or missing signature, another stream, unpublished seqs.
    acks_rejected: int = 0


class _SeqRanges:
    """A set of sequence numbers kept as sorted, disjoint, merged inclusive ranges.

    The telemetry seqs this process has published: mostly one or two runs, so a handful of
    ranges; those at or below what the outbox has settled are let go."""

    def __init__(self) -> None:
        self._ranges: list[list[int]] = []

    def add(self, seq: int) -> None:
        """Add one seq, merging it with its neighbours."""
        ranges = self._ranges
        at = bisect.bisect_right(ranges, seq, key=lambda r: r[0])
        if at > 0 and ranges[at - 1][1] >= seq - 1:
            at -= 1
            ranges[at][1] = max(ranges[at][1], seq)
        elif at < len(ranges) and ranges[at][0] == seq + 1:
            ranges[at][0] = seq
        else:
            ranges.insert(at, [seq, seq])
        if at + 1 < len(ranges) and ranges[at + 1][0] <= ranges[at][1] + 1:
            ranges[at][1] = max(ranges[at][1], ranges.pop(at + 1)[1])

    def covers(self, first: int, last: int) -> bool:
        """True when every seq of ``first..last`` is in the set."""
        at = bisect.bisect_right(self._ranges, first, key=lambda r: r[0]) - 1
        return at >= 0 and self._ranges[at][1] >= last

    def forget_through(self, seq: int) -> None:
        """Let go of the seqs at or below ``seq``."""
        self._ranges = [[max(a, seq + 1), b] for a, b in self._ranges if b > seq]


class AgentLink:
    """Async context manager owning the network thread, the sender and the heartbeat."""

    def __init__(
        self,
        *,
        settings: LinkSettings,
        outbox: Outbox,
        agent_id: str,
        site_id: str,
        boot: int,
        agent_version: str,
        status: StatusProvider,
        clock: Clock,
        on_config: Callable[[ConfigMessage], None],
        on_command: Callable[[CommandMessage], None],
        ack_key: bytes | None = None,
        tasks: TaskStarter = start_plain,
        clock_offset: OffsetEstimator | None = None,
    ) -> None:
        self._settings = settings
        # Starts the sender, heartbeat, supervisor and watch tasks: under the agent's supervisor.
        self._start_task = tasks
        # Acks must be signed with this key (None: not authenticated, see __aenter__).
        self._ack_key = ack_key
        self._outbox = outbox
        self.agent_id = agent_id
        self.site_id = site_id
        self.boot = boot
        self._version = agent_version
        self._status = status
        self._clock = clock
        # Measured on the acks' round trips; what the agent's messages carry as clock_offset_s.
        self.clock_offset = clock_offset or OffsetEstimator(clock)
        self._on_config = on_config
        self._on_command = on_command
        self.state = LinkStatus()
        self._collectors: dict[str, bool] = {}
        # Published and not yet acked by the collector: key -> when published (monotonic).
        self._inflight: dict[Key, float] = {}
        # What the broker has not answered yet (PUBACK, CONNACK), and the link's throughput.
        self._wire = Wire(
            answer_timeout_s=settings.answer_timeout_s, queue_s=settings.telemetry_queue_s
        )
        # Telemetry held back by the budget: a PUBACK makes room, so it wakes the sender.
        self._telemetry_held = False
        self._telemetry_size: float | None = None
        # The oldest unacked event a heartbeat already probed the link for.
        self._probed_for: float | None = None
        # What this process has published: an ack may name nothing beyond it.
        self._events_published_through = 0
        self._telemetry_published = _SeqRanges()
        self._reject_logged_at: float | None = None
        self._rejects_unlogged = 0
        self._srtt: float | None = None
        self._wake = asyncio.Event()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: dict[str, TaskHandle] = {}
        self._client = self._make_client()

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> AgentLink:
        self._loop = asyncio.get_running_loop()
        if self._ack_key is None:
            log.warning(
                "ACKS ARE NOT AUTHENTICATED (no mqtt.ack_key_file): anyone who can publish on "
                "%s can make this agent delete events the collector never stored",
                agent_topic(self.agent_id, Channel.ACK),
            )
        self._start_thread()
        heartbeat_stall_s = 2 * self._settings.heartbeat_s + STALL_AFTER_S
        self._tasks = {
            "link-sender": self._start_task(
                "link-sender", self._sender, stall_after_s=STALL_AFTER_S
            ),
            "link-heartbeat": self._start_task(
                "link-heartbeat", self._heartbeats, stall_after_s=heartbeat_stall_s
            ),
            "link-supervisor": self._start_task(
                "link-supervisor", self._supervise, stall_after_s=STALL_AFTER_S
            ),
            "link-watch": self._start_task("link-watch", self._watch, stall_after_s=STALL_AFTER_S),
        }
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks.values():
            await task.stop()
        self._outbox.flush()
        self._stopping.set()
        if self.state.connected:
            self._client.disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=DISCONNECT_WITH_WILL)
            )
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)

    def wake(self) -> None:
        """New data in the outbox: publish soon."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        """True while the MQTT session is up."""
        return self.state.connected

    @property
    def collector_up(self) -> bool:
        """True while any collector instance's retained status says online."""
        return any(self._collectors.values())

    @property
    def inflight(self) -> int:
        """Messages published and not yet acked by the collector."""
        return len(self._inflight)

    def resend(self) -> None:
        """Publish again, once, whatever the broker has and the collector has not acked."""
        self._reoffer_delivered()
        self._wake.set()

    # -- network thread ------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"agent-{self.agent_id}",
            protocol=mqtt.MQTTv5,
        )
        s = self._settings
        if s.username:
            password = s.password_file.read_text().strip() if s.password_file else None
            client.username_pw_set(s.username, password)
        if s.tls is not None:
            client.tls_set(
                ca_certs=str(s.tls.ca_file),
                certfile=str(s.tls.cert_file) if s.tls.cert_file else None,
                keyfile=str(s.tls.key_file) if s.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.max_inflight_messages_set(min(s.inflight_window + PAHO_INFLIGHT_EXTRA, 65535))
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._network, name=f"mqtt-{self.agent_id}", daemon=True
        )
        self._thread.start()

    def _network(self) -> None:
        """Run the connection loop; a crash is logged and the supervisor starts a new one."""
        try:
            self._connection_loop()
        except Exception:
            log.exception("MQTT network loop crashed")

    def _connection_loop(self) -> None:
        """Connect, run the paho loop, reconnect with full-jitter backoff; until stopped."""
        s = self._settings
        backoff = FullJitterBackoff(base_s=s.reconnect_min_s, cap_s=s.reconnect_max_s)
        while not self._stopping.is_set():
            try:
                self._set_will()
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = s.session_expiry_s
                self._client.connect(
                    s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
                )
                self._call(self._connecting)
            except (OSError, ssl.SSLError) as err:
                delay = backoff.next_delay()
                log.warning(
                    "broker %s:%d unreachable (%s); retry in %.1f s", s.host, s.port, err, delay
                )
                self._stopping.wait(delay)
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            while not self._stopping.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._client.loop(timeout=0.5)
                if self.state.connected:
                    backoff.reset()
            if self._stopping.is_set():
                # Let the DISCONNECT (with Will) go out before the socket closes.
                self._client.loop(timeout=0.5)
                break
            self._mark_disconnected()
            delay = backoff.next_delay()
            log.warning("MQTT connection lost (%s); reconnect in %.1f s", rc, delay)
            self._stopping.wait(delay)

    def _set_will(self) -> None:
        will = WillMessage(
            agent_id=self.agent_id,
            stream_id=self._outbox.stream_id,
            seq=self._outbox.high_water_event_seq(),
            ts=self._clock.now(),
            clock_synced=self._status.clock_synced(),
            clock_offset_s=self.clock_offset.wire_offset_s(),
            site_id=self.site_id,
            boot=self.boot,
        )
        self._client.will_set(
            agent_topic(self.agent_id, Channel.STATUS), encode(will), qos=1, retain=True
        )

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        client.subscribe(
            [
                (agent_topic(self.agent_id, Channel.ACK), 1),
                (agent_topic(self.agent_id, Channel.CONFIG), 1),
                (agent_topic(self.agent_id, Channel.CMD), 1),
                (COLLECTOR_STATUS_FILTER, 1),
            ]
        )
        self._call(self._connected)

    def _on_disconnect(self, *_args: Any) -> None:
        self._mark_disconnected()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        self._call(lambda: self._puback(mid))

    def _mark_disconnected(self) -> None:
        self._call(self._disconnected)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic, payload = msg.topic, bytes(msg.payload)
        self._call(self._heard)
        try:
            if topic.endswith("/status") and topic.startswith("sw/v1/collectors/"):
                if not payload:
                    return  # a cleared retained status
                status = CollectorStatus.model_validate_json(payload)
                instance = collector_id_from_status_topic(topic)
                self._call(lambda: self._collector_status(instance, status.online))
            elif topic.endswith("/ack"):
                # Stamped here, not on the loop: the round trip ends when the ack arrives.
                received = self._clock.monotonic()
                ack = AckMessage.model_validate_json(payload)
                self._call(lambda: self._acked(ack, received))
            elif topic.endswith("/config"):
                if payload:
                    self._on_config(ConfigMessage.model_validate_json(payload))
            elif topic.endswith("/cmd"):
                self._on_command(CommandMessage.model_validate_json(payload))
        except (ValidationError, ValueError) as err:
            # A malformed message from the central side must never stop the agent.
            log.warning("ignoring malformed message on %s: %s", topic, err)
        except Exception:
            # Nor may a failing config or command handler kill the network thread.
            log.exception("handling the message on %s failed; the link carries on", topic)

    def _call(self, fn: Callable[[], None]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    # -- loop-side handlers --------------------------------------------------------------

    def _connecting(self) -> None:
        self._wire.connecting(self._clock.monotonic())

    def _connected(self) -> None:
        self.state.connected = True
        self.state.connects += 1
        now = self._clock.monotonic()
        self._wire.connected(now)
        # paho publishes again, now, what the broker never acknowledged (a second publish for
        # the clock's round trips too); the acks of what it did acknowledge may have been lost
        # while away (QoS 0): those go again, once.
        for key in self._inflight:
            if self._wire.awaiting(key):
                self._inflight[key] = now
                self.clock_offset.published(key, now)
        self._reoffer_delivered()
        self.clock_offset.session_started()
        self.publish_birth()
        log.info("connected to broker; birth published (boot %d)", self.boot)
        self._wake.set()

    def publish_birth(self) -> None:
        """Publish the birth (retained) with the alarms active now: at each connect, and when
        the collector must reconcile (events were lost while the disk failed)."""
        if not self.state.connected:
            return  # the next connect publishes one
        birth = BirthMessage(
            agent_id=self.agent_id,
            stream_id=self._outbox.stream_id,
            seq=self._outbox.high_water_event_seq(),
            ts=self._clock.now(),
            clock_synced=self._status.clock_synced(),
            clock_offset_s=self.clock_offset.wire_offset_s(),
            site_id=self.site_id,
            boot=self.boot,
            agent_version=self._version,
            config_hash=self._status.config_hash(),
            alarms=self._status.alarm_snapshot(),
        )
        self._publish(agent_topic(self.agent_id, Channel.STATUS), encode(birth), retain=True)

    def _disconnected(self) -> None:
        if self.state.connected:
            log.warning("disconnected from broker")
        self.state.connected = False
        self._wire.disconnected()

    def _heard(self) -> None:
        self._wire.heard(self._clock.monotonic())

    def _puback(self, mid: int) -> None:
        now = self._clock.monotonic()
        self._wire.answered(mid, now)
        # Refill held-back telemetry by quarters of the budget, not a message per PUBACK:
        # each round reads the outbox, and a round per message costs more than the link.
        if self._telemetry_held:
            budget = self._wire.telemetry_budget(now)
            if self._wire.telemetry_bytes <= budget * 3 / 4:
                self._wake.set()

    def _reoffer_delivered(self) -> None:
        """Offer again what the broker acknowledged and the collector has not; what paho
        still holds is on its way already."""
        for key in [k for k in self._inflight if not self._wire.awaiting(k)]:
            del self._inflight[key]

    def _collector_status(self, instance: str, online: bool) -> None:
        was = self._collectors.get(instance, False)
        self._collectors[instance] = online
        if online and not was:
            # A collector (re)appeared: whatever it may have missed is re-sent now.
            log.info("collector %s online: re-sending unacked messages", instance)
            self._reoffer_delivered()
            self._wake.set()

    def _acked(self, ack: AckMessage, received_mono: float) -> None:
        refused = self._refusal(ack)
        if refused is not None:
            self._reject(ack, refused)
            return
        self._outbox.ack(ack)
        now = self._clock.monotonic()
        self.state.last_ack_mono = now
        # An ack names one stream: the outbox's, or the volatile one (events kept in memory).
        events = "volatile" if ack.stream_id == self._outbox.volatile_stream_id else "event"
        covered: list[tuple[str, int]] = []
        for key in list(self._inflight):
            space, seq = key
            if (space == events and seq <= ack.events_through) or (
                space == "telemetry" and any(r.first <= seq <= r.last for r in ack.telemetry)
            ):
                self._observe_ack_delay(now - self._inflight.pop(key))
                covered.append(key)
        self.clock_offset.acked(covered, received_mono=received_mono, collector_ts=ack.ts)
        self._wake.set()

    def _refusal(self, ack: AckMessage) -> str | None:
        """Why ``ack`` must not be honoured, or None when it may delete what it names."""
        volatile = ack.stream_id == self._outbox.volatile_stream_id
        if ack.stream_id != self._outbox.stream_id and not volatile:
            return f"stream {ack.stream_id} is not this agent's stream"
        if self._ack_key is not None and not ack_signature_valid(self._ack_key, ack):
            return "bad signature" if ack.sig else "no signature"
        if volatile:
            return self._outbox.volatile_refusal(ack)
        # Seqs already settled (acked before, or thinned) may be named again: that deletes
        # nothing. Beyond them, only what this process has published.
        events_settled, telemetry_settled = self._outbox.settled_through()
        if ack.events_through > max(self._events_published_through, events_settled):
            return f"events_through {ack.events_through} beyond what was published"
        self._telemetry_published.forget_through(telemetry_settled)
        for r in ack.telemetry:
            first = max(r.first, telemetry_settled + 1)
            if first <= r.last and not self._telemetry_published.covers(first, r.last):
                return f"telemetry {r.first}..{r.last} beyond what was published"
        return None

    def _reject(self, ack: AckMessage, reason: str) -> None:
        self.state.acks_rejected += 1
        now = self._clock.monotonic()
        if self._reject_logged_at is not None and now - self._reject_logged_at < (
            REJECT_LOG_EVERY_S
        ):
            self._rejects_unlogged += 1
            return
        log.warning(
            "ack from collector %r ignored: %s (%d more ignored since the last line; "
            "%d since start)",
            ack.collector_id,
            reason,
            self._rejects_unlogged,
            self.state.acks_rejected,
        )
        self._reject_logged_at = now
        self._rejects_unlogged = 0

    def _observe_ack_delay(self, sample_s: float) -> None:
        # Smoothed like TCP's RTT: a slow but working collector stretches the re-send timeout
        # instead of being flooded with copies of what it is still processing.
        self._srtt = sample_s if self._srtt is None else 0.875 * self._srtt + 0.125 * sample_s

    @property
    def resend_timeout_s(self) -> float:
        """Re-send after this long without an ack: the floor, or four smoothed ack delays."""
        floor = self._settings.resend_after_s
        return floor if self._srtt is None else min(MAX_RESEND_S, max(floor, 4 * self._srtt))

    # -- tasks ---------------------------------------------------------------------------

    def _beat(self, name: str) -> None:
        """The task ``name`` made progress (its supervisor watches for it)."""
        handle = self._tasks.get(name)
        if handle is not None:
            handle.beat()

    async def _sender(self) -> None:
        last_publish = 0.0
        while True:
            self._beat("link-sender")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that lands as the wake-up fires, and the stopping link then waited forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
            self._wake.clear()
            self._outbox.flush()
            if not self.state.connected:
                continue
            self._expire_unacked()
            last_publish = await self._publish_batch(last_publish)

    def _expire_unacked(self) -> None:
        """Offer again what the broker has but the collector did not ack in time. What the
        broker has not acknowledged is not sent twice: its silence is the link's problem
        (``_watch``), and paho sends it again after the reconnect."""
        now = self._clock.monotonic()
        timeout = self.resend_timeout_s
        for key, sent in list(self._inflight.items()):
            if now - sent >= timeout and not self._wire.awaiting(key):
                del self._inflight[key]

    async def _publish_batch(self, last_publish: float) -> float:
        """Publish what the window and the telemetry budget allow; returns the time of the
        last publish (for the rate cap)."""
        s = self._settings
        room = s.inflight_window - len(self._inflight)
        if room <= 0:
            return last_publish
        self._telemetry_held = False
        items = self._outbox.next_batch(
            limit=room, exclude=set(self._inflight), telemetry_limit=self._telemetry_room()
        )
        for item in items:
            if item.space == "telemetry" and not self._telemetry_fits(len(item.payload)):
                self._telemetry_held = True
                break  # telemetry comes after the events: nothing else is left
            if s.max_rate_per_s is not None:
                gap = 1.0 / s.max_rate_per_s - (time.monotonic() - last_publish)
                if gap > 0:
                    await asyncio.sleep(gap)
                    self._beat("link-sender")  # a paced batch is progress too
                last_publish = time.monotonic()
            if not self._publish_item(item):
                break  # connection dropped: paho sends it after the reconnect
        return last_publish

    def _telemetry_room(self) -> int:
        """How many more telemetry messages the budget may take (at least one when none is
        on its way: a message larger than the budget still goes, alone)."""
        free = self._wire.telemetry_budget(self._clock.monotonic()) - self._wire.telemetry_bytes
        if self._wire.telemetry_bytes == 0:
            free = max(free, 1)
        if free <= 0:
            self._telemetry_held = True
            return 0
        size = self._telemetry_size or 1.0
        return max(1, int(free / size))

    def _telemetry_fits(self, size: int) -> bool:
        """Whether a telemetry message of ``size`` bytes may go now."""
        on_the_way = self._wire.telemetry_bytes
        budget = self._wire.telemetry_budget(self._clock.monotonic())
        return on_the_way == 0 or on_the_way + size <= budget

    def _publish_item(self, item: OutboxItem) -> bool:
        """Publish one outbox item; False when no more should go in this round (the
        connection is gone and paho keeps the item for the next one, or paho refused it)."""
        topic = agent_topic(self.agent_id, item.channel)
        telemetry = item.space == "telemetry"
        sent = self._publish(topic, item.payload, key=item.key, telemetry=telemetry)
        if sent is None:
            return False
        self._inflight[item.key] = self._clock.monotonic()
        self.clock_offset.published(item.key, self._inflight[item.key])
        self.state.published += 1
        if item.space == "event":
            self._events_published_through = max(self._events_published_through, item.seq)
        elif item.space == "volatile":
            self._outbox.volatile_published(item.seq)
        else:
            self._telemetry_published.add(item.seq)
            size = float(len(item.payload))
            prior = self._telemetry_size
            self._telemetry_size = size if prior is None else 0.875 * prior + 0.125 * size
        return sent

    def _publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        key: Key | None = None,
        telemetry: bool = False,
    ) -> bool | None:
        """Publish at QoS 1; the broker now owes a PUBACK (``_wire``). True: handed to the
        socket; False: kept by paho for the next connection (this one is gone); None: refused."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return None
        self._wire.sent(
            info.mid, key=key, size=len(payload), telemetry=telemetry, now=self._clock.monotonic()
        )
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    async def _heartbeats(self) -> None:
        while True:
            self._beat("link-heartbeat")
            await asyncio.sleep(self._settings.heartbeat_s)
            if self.state.connected:
                self._heartbeat()

    def _heartbeat(self) -> None:
        hb = HeartbeatMessage(
            agent_id=self.agent_id,
            stream_id=self._outbox.stream_id,
            seq=self._outbox.high_water_event_seq(),
            ts=self._clock.now(),
            clock_synced=self._status.clock_synced(),
            clock_offset_s=self.clock_offset.wire_offset_s(),
            site_id=self.site_id,
            boot=self.boot,
            config_hash=self._status.config_hash(),
            outbox=self._outbox.health(),
            devices=self._status.device_health(),
            traps_rejected=self._status.traps_rejected(),
            config_error=self._status.config_error(),
            listeners=self._status.listener_health(),
            acks_rejected=self.state.acks_rejected,
        )
        self._publish(agent_topic(self.agent_id, Channel.HEARTBEAT), encode(hb))

    async def _watch(self) -> None:
        """Drop a link the broker stopped answering on; probe it when only acks are owed."""
        while True:
            self._beat("link-watch")
            await asyncio.sleep(WATCH_S)
            now = self._clock.monotonic()
            reason = self._wire.dead(now)
            if reason is not None:
                self._drop_connection(reason)
            elif self._probe_due(now):
                self._heartbeat()

    def _probe_due(self, now: float) -> bool:
        """True when events await the collector's ack and the broker has said nothing for half
        the answer timeout: nothing awaits a PUBACK, so a heartbeat asks for one. Once per
        oldest unacked event, so a slow collector does not draw a heartbeat stream."""
        if not self.state.connected or self._wire.unanswered or not self.collector_up:
            return False
        events = [at for (space, _), at in self._inflight.items() if space != "telemetry"]
        if not events:
            return False
        oldest = min(events)
        quiet_since = max(oldest, self._wire.last_heard or oldest)
        if now - quiet_since < self._settings.answer_timeout_s / 2 or self._probed_for == oldest:
            return False
        self._probed_for = oldest
        return True

    def _drop_connection(self, reason: str) -> None:
        """Close the socket under paho: its loop sees the end at once and reconnects."""
        log.warning("the broker stopped answering (%s): dropping the connection", reason)
        self.state.half_open_drops += 1
        self._disconnected()  # nothing more goes into the dead socket meanwhile
        sock = self._client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, under a TLS one too: no TLS record is needed to
                # end a connection that carries nothing any more.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # type: ignore[arg-type]

    async def _supervise(self) -> None:
        """Restart the network thread if it died (an unexpected exception in paho)."""
        while True:
            self._beat("link-supervisor")
            await asyncio.sleep(1.0)
            if (
                self._thread is not None
                and not self._thread.is_alive()
                and not self._stopping.is_set()
            ):
                log.error("MQTT network loop died; restarting it")
                self._disconnected()
                # The new client holds nothing: everything unacked is offered again.
                self._wire.reset()
                self._inflight.clear()
                self._client = self._make_client()
                self._start_thread()
