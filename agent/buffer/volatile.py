"""The volatile stream: events kept in memory while the outbox cannot write its file.

When the data file system is full, read-only or failing, an alarm that cannot be stored is not
dropped: it is kept here, bounded, and published under a stream id of its own, random and
created by this process (``docs/protocol.md``, "The volatile stream"). Its seqs start at 1 and
are gapless; none is ever a durable seq, so a durable event stored later can never collide
with one of them. Entries stay until the collector acknowledges them; when the queue is full
an event is counted as lost (and gets no seq, so the stream stays gapless).

Order across the two streams is kept by the agent, because the collector applies each stream
on its own: a volatile event is offered only once the durable events of the same alarm that
were stored before it are acknowledged (``after``), and a durable event stored after a volatile
one is offered only once that volatile one is acknowledged (``durable_high``).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from protocol import AlarmSnapshot

Identity = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """One event of the volatile stream, encoded, with what orders it against the outbox."""

    seq: int
    payload: bytes
    created: float
    # The durable event seq (same alarm identity) that must be acknowledged before this one.
    after: int
    # The highest durable event seq assigned when this one was kept: any later durable event
    # waits for this one's ack.
    durable_high: int
    # Outside the capacity (the storage_fault alarm).
    reserved: bool = False


class VolatileStream:
    """A bounded, in-memory, acknowledged stream of events (see the module docstring)."""

    def __init__(self, *, capacity: int, stream_id: str | None = None) -> None:
        self.stream_id = stream_id or uuid.uuid4().hex
        self.capacity = capacity
        self._kept: deque[KeptEvent] = deque()
        self._reserved = 0
        self._next_seq = 1
        self._published_through = 0
        self._acked_through = 0
        # Events that could be neither stored nor kept, since start.
        self.lost = 0
        self.kept_total = 0
        # Alarm states changed by events that are not in the outbox's alarm_state table (kept
        # here, or lost): what a birth must add to the durable snapshot. None: cleared.
        self._overlay: dict[Identity, AlarmSnapshot | None] = {}

    # -- keeping -------------------------------------------------------------------------

    def admits(self, *, reserved: bool = False) -> bool:
        """Whether one more event fits (a reserved one always does: the storage_fault alarm)."""
        return reserved or len(self._kept) - self._reserved < self.capacity

    @property
    def next_seq(self) -> int:
        """The seq the next kept event gets."""
        return self._next_seq

    def keep(
        self,
        payload: bytes,
        *,
        created: float,
        after: int,
        durable_high: int,
        reserved: bool = False,
    ) -> int:
        """Keep one event built with ``next_seq``; returns its seq."""
        seq = self._next_seq
        self._kept.append(KeptEvent(seq, payload, created, after, durable_high, reserved))
        self._reserved += reserved
        self._next_seq += 1
        self.kept_total += 1
        return seq

    def lose(self) -> None:
        """Count one event that could not be kept (the queue is full)."""
        self.lost += 1

    def note_alarm(self, identity: Identity, active: AlarmSnapshot | None) -> None:
        """Remember an alarm's state changed outside the outbox (None: cleared)."""
        self._overlay[identity] = active

    def forget(self, identity: Identity) -> None:
        """The outbox's table holds this alarm's state again."""
        self._overlay.pop(identity, None)

    def overlay(self) -> dict[Identity, AlarmSnapshot | None]:
        """Alarm states not yet in the outbox's table."""
        return dict(self._overlay)

    def overlay_written(self) -> None:
        """The outbox's table now holds the overlay."""
        self._overlay.clear()

    # -- publishing and acking -----------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events kept and not yet acknowledged."""
        return len(self._kept)

    def oldest_created(self) -> float | None:
        """When the oldest unacknowledged event was kept (wall-clock seconds)."""
        return self._kept[0].created if self._kept else None

    def publishable(self, *, durable_acked: int, exclude: set[tuple[str, int]]) -> Iterator[int]:
        """Seqs that may go out now, in order: the prefix whose durable predecessors are acked."""
        for event in self._kept:
            if event.after > durable_acked:
                return
            if ("volatile", event.seq) not in exclude:
                yield event.seq

    def event(self, seq: int) -> KeptEvent:
        """The kept event ``seq`` (still unacknowledged)."""
        return self._kept[seq - self._kept[0].seq]

    def durable_gate(self) -> int | None:
        """Durable events above this seq wait (a volatile event before them is unacked)."""
        return min((e.durable_high for e in self._kept), default=None)

    def published(self, seq: int) -> None:
        """``seq`` went out: an ack may now name it."""
        self._published_through = max(self._published_through, seq)

    def refusal(self, events_through: int, *, telemetry: bool) -> str | None:
        """Why an ack of this stream must not be honoured, or None."""
        if telemetry:
            return "telemetry acknowledged on the volatile stream, which carries none"
        if events_through > max(self._published_through, self._acked_through):
            return f"events_through {events_through} beyond what was published"
        return None

    def ack(self, events_through: int) -> int:
        """Let go of what the collector committed; returns how many events that was."""
        self._acked_through = max(self._acked_through, events_through)
        count = 0
        while self._kept and self._kept[0].seq <= events_through:
            self._reserved -= self._kept.popleft().reserved
            count += 1
        return count
