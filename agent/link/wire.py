"""What is on the wire: publishes the broker has not answered (PUBACK) yet.

Three decisions of the link come from here:

- **Is the link alive?** The broker answers a CONNECT with a CONNACK and every QoS 1 publish
  with a PUBACK, in order, at once. When the oldest thing awaiting an answer has waited
  ``answer_timeout_s``, the link is half-open (a dead path that the socket does not notice for
  minutes) and must be dropped. This costs no traffic: what is published anyway is the probe.
- **How much telemetry may be on its way?** Whatever telemetry was handed to the socket sits in
  front of the next alarm (socket buffers, a modem's queue). It is kept to ``queue_s`` of the
  link's measured throughput: about one second, whatever the link.
- **What did paho keep?** A publish without its PUBACK stays in paho's session store, and paho
  publishes it again after a reconnect by itself; the link must not publish it a second time.

Time comes from the caller (the link's clock), so tests move it explicitly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# Telemetry on its way, before the link's throughput is measured and at the least: about half
# a second of a 64 kbit/s link.
MIN_TELEMETRY_BYTES = 4096
# ... and at the most, however fast the link looks: a link that slows down suddenly (a 4G cell
# falling back to 2G) is stuck with what was queued before, so this bounds that too.
MAX_TELEMETRY_BYTES = 256 * 1024
# Throughput is the best delivery rate of this many seconds (as BBR estimates a bottleneck).
RATE_WINDOW_S = 5.0

Key = tuple[str, int]


@dataclass(slots=True)
class Sent:
    """One publish awaiting its PUBACK."""

    key: Key | None  # the outbox item, None for a birth or a heartbeat
    size: int
    telemetry: bool
    at: float
    delivered_before: int
    # Published again by paho after a reconnect: its PUBACK says nothing about throughput.
    resent: bool = False


class DeliveryRate:
    """The link's throughput in bytes per second: the highest delivery-rate sample of the last
    ``window_s`` (a sample: bytes acknowledged while one publish waited, over its wait)."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self._window_s = window_s
        # (time, rate) with decreasing rates: the front is the window's maximum.
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, rate: float) -> None:
        """One sample taken at ``now``."""
        while self._samples and self._samples[-1][1] <= rate:
            self._samples.pop()
        self._samples.append((now, rate))

    def value(self, now: float) -> float | None:
        """The estimate, or None with no sample in the window."""
        while self._samples and now - self._samples[0][0] > self._window_s:
            self._samples.popleft()
        return self._samples[0][1] if self._samples else None


class Wire:
    """Publishes awaiting a PUBACK (by MQTT packet id), the CONNECT awaiting its CONNACK."""

    def __init__(self, *, answer_timeout_s: float, queue_s: float) -> None:
        self.answer_timeout_s = answer_timeout_s
        self.queue_s = queue_s
        self._sent: dict[int, Sent] = {}
        self._keys: dict[Key, int] = {}
        self._connect_at: float | None = None
        self._connected = False
        self._delivered = 0
        self.telemetry_bytes = 0
        self.rate = DeliveryRate()
        self.last_heard: float | None = None

    # -- what happens ----------------------------------------------------------------------

    def connecting(self, now: float) -> None:
        """A CONNECT went out."""
        self._connect_at = now
        self._connected = False

    def connected(self, now: float) -> None:
        """The CONNACK came: paho publishes what it kept again, now."""
        self._connect_at = None
        self._connected = True
        self.heard(now)
        for sent in self._sent.values():
            sent.at = now
            sent.resent = True

    def disconnected(self) -> None:
        """The connection is gone; what awaits a PUBACK stays with paho for the next one."""
        self._connect_at = None
        self._connected = False

    def sent(self, mid: int, *, key: Key | None, size: int, telemetry: bool, now: float) -> None:
        """A QoS 1 publish was handed to paho with packet id ``mid``."""
        self._sent[mid] = Sent(key, size, telemetry, now, self._delivered)
        if key is not None:
            self._keys[key] = mid
        if telemetry:
            self.telemetry_bytes += size

    def answered(self, mid: int, now: float) -> Sent | None:
        """The PUBACK of ``mid`` came (whatever its reason code: the broker answered)."""
        self.heard(now)
        sent = self._sent.pop(mid, None)
        if sent is None:
            return None
        if sent.key is not None and self._keys.get(sent.key) == mid:
            del self._keys[sent.key]
        if sent.telemetry:
            self.telemetry_bytes -= sent.size
        self._delivered += sent.size
        if not sent.resent and now > sent.at:
            self.rate.add(now, (self._delivered - sent.delivered_before) / (now - sent.at))
        return sent

    def heard(self, now: float) -> None:
        """Something came from the broker."""
        self.last_heard = now

    def reset(self) -> None:
        """paho's client was replaced: nothing it kept will be published again."""
        self._sent.clear()
        self._keys.clear()
        self.telemetry_bytes = 0
        self._connect_at = None
        self._connected = False

    # -- what follows ----------------------------------------------------------------------

    def awaiting(self, key: Key) -> bool:
        """True while ``key`` was handed to paho and the broker has not acknowledged it."""
        return key in self._keys

    @property
    def connect_pending(self) -> bool:
        """True while a CONNECT awaits its CONNACK."""
        return self._connect_at is not None

    @property
    def unanswered(self) -> int:
        """Publishes awaiting their PUBACK."""
        return len(self._sent)

    def telemetry_budget(self, now: float) -> int:
        """Telemetry bytes that may be on their way: ``queue_s`` of the measured throughput."""
        rate = self.rate.value(now)
        if rate is None:
            return MIN_TELEMETRY_BYTES
        return int(min(MAX_TELEMETRY_BYTES, max(MIN_TELEMETRY_BYTES, rate * self.queue_s)))

    def dead(self, now: float) -> str | None:
        """Why the link must be taken for dead, or None while the broker answers in time."""
        limit = self.answer_timeout_s
        if self._connect_at is not None and now - self._connect_at >= limit:
            return f"no CONNACK within {limit:g} s"
        if self._connected and self._sent:
            # In the order sent, and all stamped alike by a reconnect: the first is the oldest.
            oldest = next(iter(self._sent.values())).at
            if now - oldest >= limit:
                return f"no PUBACK within {limit:g} s ({len(self._sent)} publishes unanswered)"
        return None
