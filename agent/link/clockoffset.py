"""How far the edge's wall clock is from the collector's, measured on live round trips.

An ack carries the collector's time (``AckMessage.ts``), taken after the commit of what it
acknowledges: after the agent published it and before the ack came back. As NTP does, that
time is placed at the midpoint of the round trip, so a sample is right within half its round
trip; one whose round trip is over ``MAX_RTT_S`` says too little and is dropped. Of the samples
of the last ``WINDOW_S``, the one with the smallest round trip is the estimate.

Only a round trip the agent timed itself is a sample. A heartbeat is never one (it is not
acked: whatever its ts says after waiting behind a half-open link, it measures nothing). Nor is
the ack of a message this process published more than once, since it may answer an earlier
copy (Karn's rule, as TCP does for its RTT), nor an ack of a session's first seconds, which may
have waited at the broker.

The estimate is held against the monotonic clock, which a step of the wall clock does not
move: the collector's time is ``monotonic + base``. When the wall clock steps (+1 h, -10 min),
the offset (collector time - wall time) changes by the step at once, without a new sample.
``check_step`` says that it happened, for the log and for an agent that has no estimate yet.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime

from clocks import Clock

log = logging.getLogger(__name__)

# A sample is right within half its round trip: beyond this it is not worth keeping.
MAX_RTT_S = 2.0
# The estimate is the best sample of this last stretch: the monotonic clock drifts a little
# against the collector's when not disciplined (tens of ppm, milliseconds in minutes), and the
# collector's own clock may be corrected. Samples are kept at least SPACING_S apart (within
# that, the better one stays), so a burst of acks on a congested link fills no window alone.
WINDOW_S = 300.0
SPACING_S = 15.0
MAX_SAMPLES = 24
# Acks received this soon after (re)connecting may have been queued at the broker.
SESSION_GUARD_S = 2.0
# A change of wall - monotonic larger than this between two looks is a step (NTP slews at
# most 0.5 ms a second).
STEP_S = 1.0
# Publish times remembered for messages not acked yet (re-sends reuse their keys, so about the
# in-flight window; beyond this many, the oldest are forgotten: they only cost their sample).
MAX_TRACKED = 4_096


@dataclass(frozen=True, slots=True)
class OffsetSample:
    """One round trip: when (monotonic), how long, and the collector's time minus monotonic."""

    at_mono: float
    rtt_s: float
    base_s: float


class OffsetEstimator:
    """Collector time minus edge wall-clock time, from the round trips of acked messages.

    Publishes and acks are told on the asyncio loop; the offset is also read from the MQTT
    network thread (the Will is built there), hence the lock.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[OffsetSample] = deque(maxlen=MAX_SAMPLES)
        # key -> (monotonic time of its one publish, or None once published twice).
        self._sent: dict[Hashable, float | None] = {}
        self._session_mono: float | None = None
        self._wall_minus_mono = self._wall_minus_mono_now()
        self.discarded = 0

    # -- round trips ---------------------------------------------------------------------

    def session_started(self) -> None:
        """A (re)connect: acks of the next seconds may have waited at the broker."""
        self._session_mono = self._clock.monotonic()

    def published(self, key: Hashable, at_mono: float) -> None:
        """``key`` was published at ``at_mono``; a second publish makes its ack ambiguous."""
        if key in self._sent:
            self._sent[key] = None
            return
        if len(self._sent) >= MAX_TRACKED:
            del self._sent[next(iter(self._sent))]
        self._sent[key] = at_mono

    def acked(
        self, keys: Iterable[Hashable], *, received_mono: float, collector_ts: datetime
    ) -> OffsetSample | None:
        """An ack covering ``keys`` came back at ``received_mono``: a sample if it is one."""
        sent: list[float | None] = [self._sent.pop(key, None) for key in keys]
        if not sent or any(at is None for at in sent):
            return None  # nothing of ours, or an ambiguous copy, or forgotten
        if self._session_mono is not None and received_mono - self._session_mono < (
            SESSION_GUARD_S
        ):
            return None
        # The ack follows the commit of every message it covers: the latest publish bounds it.
        latest = max(at for at in sent if at is not None)
        return self.add(sent_mono=latest, received_mono=received_mono, collector_ts=collector_ts)

    def add(
        self, *, sent_mono: float, received_mono: float, collector_ts: datetime
    ) -> OffsetSample | None:
        """Take one round trip (``collector_ts`` between the two ends); None when discarded."""
        rtt = received_mono - sent_mono
        if not 0.0 <= rtt <= MAX_RTT_S:
            self.discarded += 1
            return None
        sample = OffsetSample(
            at_mono=received_mono,
            rtt_s=rtt,
            base_s=collector_ts.timestamp() - (sent_mono + received_mono) / 2,
        )
        with self._lock:
            first = not self._samples
            if self._samples and received_mono - self._samples[-1].at_mono < SPACING_S:
                if rtt < self._samples[-1].rtt_s:
                    self._samples[-1] = sample
            else:
                self._samples.append(sample)
        if first:
            log.info(
                "clock measured against the collector: collector - edge = %+.3f s"
                " (round trip %.3f s)",
                self._offset_on(sample),
                rtt,
            )
        return sample

    # -- reading -------------------------------------------------------------------------

    def best(self) -> OffsetSample | None:
        """The sample the estimate rests on: the smallest round trip of the last window."""
        with self._lock:
            samples = list(self._samples)
        if not samples:
            return None
        newest = samples[-1].at_mono
        return min((s for s in samples if s.at_mono >= newest - WINDOW_S), key=lambda s: s.rtt_s)

    def offset_s(self) -> float | None:
        """Collector time minus this box's wall-clock time, now; None before any sample."""
        best = self.best()
        return None if best is None else self._offset_on(best)

    def wire_offset_s(self) -> float | None:
        """The offset as messages carry it: to the millisecond, and 0 when the measure cannot
        tell it from zero (within half its round trip), so an NTP-synced clock keeps its own
        precision."""
        best = self.best()
        if best is None:
            return None
        offset = self._offset_on(best)
        return 0.0 if abs(offset) <= best.rtt_s / 2 else round(offset, 3)

    def check_step(self) -> float | None:
        """Seconds the wall clock stepped since the last look (None: no step). The estimate
        needs no mending: it is held against the monotonic clock."""
        now = self._wall_minus_mono_now()
        step = now - self._wall_minus_mono
        self._wall_minus_mono = now
        return step if abs(step) > STEP_S else None

    def _offset_on(self, best: OffsetSample) -> float:
        collector_now = self._clock.monotonic() + best.base_s
        return collector_now - self._clock.now().timestamp()

    def _wall_minus_mono_now(self) -> float:
        return self._clock.now().timestamp() - self._clock.monotonic()
