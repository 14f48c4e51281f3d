"""The durable outbox: SQLite in WAL mode, one file per agent, one stream per file.

Why SQLite: an alarm must be on disk before it is published and stay there until the
collector has committed it; SQLite WAL gives atomic, fsynced commits at thousands per second
on this class of hardware, where a JSON-file store rewrites everything on each insert.

When the file cannot be written (the data file system is full, read-only, or failing, as SD
cards end), recording does not stop: events go to the volatile stream (``volatile.py``), kept
in memory and published directly; a ``storage_fault`` alarm, itself kept in memory, tells the
NOC; and ``check()``, called every second by the agent, finds out when the disk is back,
writes what the outbox missed (alarm states, acks) and resumes durable recording.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import quote

from agent.buffer.errors import KIND_WORDS, StorageError, free_bytes, storage_error
from agent.buffer.volatile import Identity, VolatileStream
from agent.events import AlarmTransition, Sample
from clocks import Clock
from protocol import (
    AckMessage,
    AlarmEvent,
    AlarmSnapshot,
    Channel,
    OutboxHealth,
    Severity,
    StateEvent,
    TelemetryMessage,
    TelemetrySample,
    Transition,
    encode,
)
from siteconfig.outbox import OutboxSettings

log = logging.getLogger(__name__)

# Space kept per alarm row when sizing the reserve (payload ~450 bytes + row overhead).
ALARM_ROW_BYTES = 640
# While events are pending, one telemetry message rides along every this many events.
TELEMETRY_EVERY = 10
# The agent's own alarm about its storage (equipment ``agent``).
STORAGE_EQUIPMENT = "agent"
STORAGE_POINT = "storage"
STORAGE_FAULT = "storage_fault"
# While writes fail, a probe write every this often finds out when the disk is back.
PROBE_FAULTED_S = 2.0
# Without any write for this long, a probe write finds out whether the disk still takes them
# (a file system turned read-only says nothing until written to).
PROBE_IDLE_S = 60.0
MIB = 1024 * 1024

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
    seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_state (
    equipment_id TEXT NOT NULL, point TEXT NOT NULL, alarm_type TEXT NOT NULL,
    severity TEXT NOT NULL, value TEXT NOT NULL, since TEXT NOT NULL,
    PRIMARY KEY (equipment_id, point, alarm_type));
"""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored message ready to publish."""

    # "volatile": an event of the volatile stream (kept in memory while the disk fails).
    space: Literal["event", "telemetry", "volatile"]
    seq: int
    channel: Channel
    payload: bytes
    created: float

    @property
    def key(self) -> tuple[str, int]:
        """Identity of the item within the stream."""
        return (self.space, self.seq)


@dataclass(frozen=True, slots=True)
class Recovery:
    """The disk came back: how many events had to be kept in memory, and how many were lost."""

    kept: int
    lost: int


class Outbox:
    """Stores events (gapless seq, fsync per alarm) and telemetry (group-committed, thinnable);
    keeps them in memory, on the volatile stream, while its file cannot be written."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path,
        settings: OutboxSettings,
        agent_id: str,
        site_id: str,
        clock: Clock,
        recovery_reason: str | None,
        clock_synced: Callable[[], bool] | None = None,
        clock_offset: Callable[[], float | None] | None = None,
    ) -> None:
        self._db = conn
        self.path = path
        self._settings = settings
        self.agent_id = agent_id
        self.site_id = site_id
        self._clock = clock
        self._synced = clock_synced or (lambda: False)
        # What each record carries as clock_offset_s: the offset when it is recorded, since the
        # wall clock may step before it is published.
        self._clock_offset = clock_offset or _no_offset
        self.recovery_reason = recovery_reason
        self.recovered = recovery_reason is not None
        self._lock = threading.RLock()
        self._pending_samples: list[tuple[list[TelemetrySample], bool, float | None, datetime]] = []
        self._pending_since: float | None = None
        self.stream_id = self._meta("stream_id") or ""
        self._bytes_events = self._sum_bytes("events")
        self._bytes_telemetry = self._sum_bytes("telemetry")
        # Kept in memory so that nothing the link asks for needs the disk.
        self._high_water = int(self._meta("event_seq") or 0)
        self._tx_high = self._high_water
        events_settled, telemetry_settled = self._settled_on_disk()
        self._acked_events = events_settled
        self._telemetry_settled = telemetry_settled
        # Telemetry the collector acknowledged while the file could not be written: deleted
        # once it can.
        self._acked_telemetry: list[tuple[int, int]] = []
        self._volatile = VolatileStream(capacity=settings.volatile_max)
        # Per alarm identity, the highest durable event seq stored (loaded once when first
        # needed): what a volatile event of that alarm must wait for.
        self._durable_by_identity: dict[Identity, int] | None = None
        self._fault: StorageError | None = None
        self._fault_since: datetime | None = None
        self._fault_mono = 0.0
        self._next_probe = 0.0
        self._reopen = False
        self._at_fault = (0, 0, 0)  # kept, lost, dropped when the fault began
        self.storage_errors = 0
        self._last_write: datetime | None = None
        self._last_write_mono: float | None = None
        self._free: int | None = free_bytes(path.parent)
        self._low_space = False
        # Telemetry batches dropped because they could not be stored (not yet in thinned_total).
        self._dropped = 0
        # What the storage_fault alarm currently says (its value), None while it is clear.
        self._alarm_value: str | None = None
        self._lost_logged_at = -1
        self._read_failing = False
        self._last_counts = (0, 0, None, 0)
        self._durable_alarms: list[AlarmSnapshot] = []

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        settings: OutboxSettings,
        agent_id: str,
        site_id: str,
        clock: Clock,
        clock_synced: Callable[[], bool] | None = None,
        clock_offset: Callable[[], float | None] | None = None,
    ) -> Outbox:
        """Open (or create) the outbox; a corrupt file is moved aside and a new stream starts.

        ``clock_synced`` stamps the events the outbox writes itself (storage faults). Raises
        ``StorageError`` when the disk refuses (full, read-only, failing): that is no
        corruption, and the file is left where it is, with its stream. ``clock_offset``:
        collector time minus edge time as now measured (None: unknown)."""
        path = settings.path
        path.parent.mkdir(parents=True, exist_ok=True)
        reason: str | None = None
        conn: sqlite3.Connection | None = None
        if path.exists():
            try:
                conn = _connect(path)
                _check(conn)
            except (sqlite3.DatabaseError, _Corrupt) as err:
                if conn is not None:
                    conn.close()
                conn = None
                fault = storage_error(err, directory=path.parent)
                if fault is not None and fault.kind != "corrupt":
                    raise fault from err
                reason = f"{type(err).__name__}: {err}"
                aside = _move_aside(path, clock)
                log.error("outbox %s is corrupt (%s); moved aside to %s", path, reason, aside)
        try:
            if conn is None:
                conn = _connect(path)
            conn.executescript(_SCHEMA)
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('stream_id', ?)", (uuid.uuid4().hex,)
                )
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('event_seq', '0')")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('telemetry_seq', '0')")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('thinned_total', '0')")
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            raise _storage(err, path) from err
        return cls(
            conn,
            path=path,
            settings=settings,
            agent_id=agent_id,
            site_id=site_id,
            clock=clock,
            recovery_reason=reason,
            clock_synced=clock_synced,
            clock_offset=clock_offset,
        )

    def close(self) -> None:
        """Commit pending telemetry and close the file."""
        with self._lock:
            self.flush()
            with contextlib.suppress(sqlite3.Error):
                self._db.close()

    # -- writing -------------------------------------------------------------------------

    def append_alarm(self, t: AlarmTransition, *, clock_synced: bool) -> AlarmEvent | None:
        """Store an alarm transition with the next seq; durable (fsync) when this returns.

        While the file cannot be written it is kept on the volatile stream instead; None when
        even that was full (the event is counted as lost)."""
        with self._lock:
            if self._fault is None:
                try:
                    event = self._write(lambda: self._store_alarm(t, clock_synced))
                except StorageError as err:
                    self._enter_fault(err)
                else:
                    self._stored(event)
                    return event
            return self._keep_alarm(t, clock_synced=clock_synced)

    def append_state(
        self, *, name: str, detail: dict[str, object], clock_synced: bool
    ) -> StateEvent | None:
        """Store a state event of the agent itself (same gapless sequence as alarms); kept on
        the volatile stream while the file cannot be written (None: lost, the queue is full)."""
        with self._lock:
            if self._fault is None:
                try:
                    return self._write(
                        lambda: self._state_event(
                            name=name, detail=detail, clock_synced=clock_synced
                        )
                    )
                except StorageError as err:
                    self._enter_fault(err)
            if not self._volatile.admits():
                self._lose(f"state event {name}")
                return None
            event = self._state_message(
                name=name,
                detail=detail,
                stream_id=self._volatile.stream_id,
                seq=self._volatile.next_seq,
                synced=clock_synced,
            )
            self._volatile.keep(
                encode(event),
                created=self._clock.now().timestamp(),
                after=0,
                durable_high=self._high_water,
            )
            return event

    def append_samples(self, samples: Sequence[Sample], *, clock_synced: bool) -> None:
        """Queue one telemetry batch; committed with others at most one interval later."""
        if not samples:
            return
        # The contract carries finite values only: a device reading NaN (a float32 register of
        # a sensor that is not ready) measured nothing.
        batch = [
            TelemetrySample(
                equipment_id=s.equipment_id, point=s.point, value=s.value, unit=s.unit, ts=s.ts
            )
            for s in samples
            if math.isfinite(s.value)
        ]
        if not batch:
            return
        with self._lock:
            if self._fault is not None:
                self._dropped += 1  # nowhere to keep it: counted with the thinned ones
                return
            self._pending_samples.append(
                (batch, clock_synced, self._clock_offset(), self._clock.now())
            )
            if self._pending_since is None:
                self._pending_since = self._clock.monotonic()
            due = self._clock.monotonic() - self._pending_since
            if due >= self._settings.telemetry_commit_interval_s:
                self.flush()

    def flush(self) -> int:
        """Commit queued telemetry in one transaction; returns the number of messages stored."""
        with self._lock:
            if not self._pending_samples:
                return 0
            pending, self._pending_samples = self._pending_samples, []
            self._pending_since = None
            if self._fault is not None:
                self._dropped += len(pending)
                return 0
            try:
                self._write(lambda: self._store_samples(pending))
            except StorageError as err:
                self._dropped += len(pending)
                self._enter_fault(err)
                return 0
            return len(pending)

    def _store_samples(
        self, pending: list[tuple[list[TelemetrySample], bool, float | None, datetime]]
    ) -> None:
        for batch, synced, offset, ts in pending:
            seq = self._next("telemetry_seq")
            message = TelemetryMessage(
                agent_id=self.agent_id,
                stream_id=self.stream_id,
                seq=seq,
                ts=ts,
                clock_synced=synced,
                clock_offset_s=offset,
                site_id=self.site_id,
                samples=batch,
            )
            payload = encode(message)
            self._db.execute(
                "INSERT INTO telemetry VALUES (?, ?, ?)",
                (seq, payload, self._clock.now().timestamp()),
            )
            self._bytes_telemetry += len(payload)
        self._enforce_bounds()

    # -- the storage under the outbox ----------------------------------------------------

    def check(self) -> Recovery | None:
        """Look at the storage (free space; a probe write when due) and resume durable
        recording once the disk takes writes again; called about every second by the agent.

        Returns what the fault cost when recording has just resumed."""
        with self._lock:
            mono = self._clock.monotonic()
            self._free = free_bytes(self.path.parent)
            recovery = None
            if self._fault is not None:
                if mono >= self._next_probe:
                    self._next_probe = mono + PROBE_FAULTED_S
                    recovery = self._try_recover()
            elif self._last_write_mono is None or mono - self._last_write_mono >= PROBE_IDLE_S:
                try:
                    self._write(self._probe)
                except StorageError as err:
                    self._enter_fault(err)
            floor = self._settings.min_free_mib * MIB
            if self._free is not None and floor > 0:
                # Raised under the floor, cleared at twice the floor: no flapping at the edge.
                if self._free < floor:
                    self._low_space = True
                elif self._free >= 2 * floor:
                    self._low_space = False
            self._storage_alarm()
            return recovery

    @property
    def storage_fault(self) -> StorageError | None:
        """The error writes fail with, None while they work."""
        return self._fault

    @property
    def storage_alarm(self) -> str | None:
        """The storage_fault alarm's value while it is raised (``full``, ``low_space``...)."""
        return self._alarm_value

    @property
    def volatile_stream_id(self) -> str:
        """The stream id of this process's volatile stream (``volatile.py``)."""
        return self._volatile.stream_id

    def volatile_refusal(self, ack: AckMessage) -> str | None:
        """Why an ack of the volatile stream must not be honoured, or None."""
        with self._lock:
            return self._volatile.refusal(ack.events_through, telemetry=bool(ack.telemetry))

    def volatile_published(self, seq: int) -> None:
        """The link published volatile event ``seq``: an ack may now name it."""
        with self._lock:
            self._volatile.published(seq)

    def _enter_fault(self, err: StorageError) -> None:
        self.storage_errors += 1
        if self._fault is None:
            self._fault_since = self._clock.now()
            self._fault_mono = self._clock.monotonic()
            self._next_probe = self._fault_mono + PROBE_FAULTED_S
            self._at_fault = (self._volatile.kept_total, self._volatile.lost, self._dropped)
            self._reopen = False
            log.error(
                "OUTBOX CANNOT WRITE %s (%s): alarms are kept in memory (up to %d) and sent"
                " directly until it can",
                self.path,
                err,
                self._volatile.capacity,
            )
            if self._pending_samples:
                self._dropped += len(self._pending_samples)
                self._pending_samples, self._pending_since = [], None
        self._fault = err
        self._storage_alarm()

    def _try_recover(self) -> Recovery | None:
        """One attempt: write what the outbox missed, on the open file or on a reopened one."""
        try:
            if self._reopen:
                self._reopen_file()
            self._write(self._catch_up)
        except StorageError as err:
            # A file system remounted or replaced under the open file needs a new connection.
            self._fault, self._reopen = err, True
            self.storage_errors += 1
            return None
        fault, since = self._fault, self._fault_since
        assert fault is not None and since is not None
        self._fault = None
        self._volatile.overlay_written()
        self._acked_telemetry.clear()
        kept = self._volatile.kept_total - self._at_fault[0]
        lost = self._volatile.lost - self._at_fault[1]
        dropped = self._dropped - self._at_fault[2]
        self._dropped = 0
        duration_s = self._clock.monotonic() - self._fault_mono
        log.warning(
            "outbox %s writable again after %.0f s: %d events were kept in memory, %d lost,"
            " %d telemetry messages dropped",
            self.path,
            duration_s,
            kept,
            lost,
            dropped,
        )
        self.append_state(
            name="storage_recovered",
            detail={
                "error": fault.kind,
                "detail": fault.detail[:200],
                "since": since.isoformat(),
                "duration_s": round(duration_s, 1),
                "kept_in_memory": kept,
                "lost": lost,
                "telemetry_dropped": dropped,
            },
            clock_synced=self._synced(),
        )
        return Recovery(kept=kept, lost=lost)

    def _reopen_file(self) -> None:
        """A new connection to the same file, which must still be this stream's, whole."""
        try:
            conn = _connect(self.path, create=False)
            stream = conn.execute("SELECT value FROM meta WHERE key = 'stream_id'").fetchone()
            high = conn.execute("SELECT value FROM meta WHERE key = 'event_seq'").fetchone()
        except sqlite3.Error as err:
            raise _storage(err, self.path) from err
        found = (stream[0] if stream else None, int(high[0]) if high else None)
        if found != (self.stream_id, self._high_water):
            conn.close()
            # An older copy would hand out seqs the collector already has: never written to.
            raise StorageError(
                "corrupt",
                f"{self.path} now holds stream {found[0]} at event {found[1]},"
                f" not {self.stream_id} at event {self._high_water}",
            )
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db = conn
        self._reopen = False

    def _probe(self) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('last_write', ?)",
            (self._clock.now().isoformat(),),
        )

    def _catch_up(self) -> None:
        """What the outbox missed while it could not write, in one transaction."""
        self._probe()
        for identity, active in self._volatile.overlay().items():
            if active is None:
                self._db.execute(
                    "DELETE FROM alarm_state WHERE equipment_id = ? AND point = ?"
                    " AND alarm_type = ?",
                    identity,
                )
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO alarm_state VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        *identity,
                        active.severity.value,
                        json.dumps(active.value),
                        active.since.astimezone(UTC).isoformat(),
                    ),
                )
        self._delete_acked(self._acked_events, self._acked_telemetry)
        if self._dropped:
            total = int(self._meta("thinned_total") or 0) + self._dropped
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'thinned_total'", (str(total),))

    def _storage_alarm(self) -> None:
        """Raise, re-raise (another cause) or clear the storage_fault alarm as things stand."""
        fault = self._fault
        if fault is not None:
            value: str | None = fault.kind
            reason = (
                f"outbox cannot be written ({KIND_WORDS[fault.kind]}: {fault.detail}); alarms"
                f" are kept in memory (up to {self._volatile.capacity}) and sent directly"
            )
        elif self._low_space:
            value = "low_space"
            free = (self._free or 0) / MIB
            reason = (
                f"data filesystem nearly full: {free:.1f} MiB free, at least"
                f" {self._settings.min_free_mib:g} MiB wanted"
            )
        else:
            value, reason = None, ""
        if value == self._alarm_value:
            return
        transition = AlarmTransition(
            equipment_id=STORAGE_EQUIPMENT,
            point=STORAGE_POINT,
            alarm_type=STORAGE_FAULT,
            transition=Transition.RAISED if value else Transition.CLEARED,
            severity=Severity.MAJOR,
            value=value,
            reason=reason[:500] if value else "outbox writable again",
            ts=self._clock.now(),
        )
        if value is not None:
            # Never needs the disk, never lost to a full queue.
            self._alarm_value = value
            self._keep_alarm(transition, clock_synced=self._synced(), reserved=True)
            return
        try:
            event = self._write(lambda: self._store_alarm(transition, self._synced()))
        except StorageError as err:
            self._enter_fault(err)  # raises it again, with this cause
            return
        self._stored(event)
        self._alarm_value = None

    def _keep_alarm(
        self, t: AlarmTransition, *, clock_synced: bool, reserved: bool = False
    ) -> AlarmEvent | None:
        """Put an alarm transition on the volatile stream (or count it lost)."""
        identity = (t.equipment_id, t.point, t.alarm_type)
        self._volatile.note_alarm(identity, _snapshot(t))
        if not self._volatile.admits(reserved=reserved):
            self._lose(f"alarm {t.alarm_type} {t.transition.value} on {t.equipment_id}")
            return None
        event = self._alarm_event(
            t, stream_id=self._volatile.stream_id, seq=self._volatile.next_seq, synced=clock_synced
        )
        self._volatile.keep(
            encode(event),
            created=self._clock.now().timestamp(),
            after=self._durable_after(identity),
            durable_high=self._high_water,
            reserved=reserved,
        )
        return event

    def _lose(self, what: str) -> None:
        self._volatile.lose()
        lost = self._volatile.lost
        # The first loss of a fault, then every hundredth: the count is in every heartbeat.
        if lost - self._at_fault[1] == 1 or lost - self._lost_logged_at >= 100:
            self._lost_logged_at = lost
            log.error(
                "LOST %s: the outbox cannot write and the in-memory queue is full (%d events);"
                " %d lost since start",
                what,
                self._volatile.capacity,
                lost,
            )

    def _durable_after(self, identity: Identity) -> int:
        """The durable event seq of the same alarm a volatile event must follow."""
        if self._durable_by_identity is None:
            try:
                rows = self._db.execute(
                    "SELECT json_extract(p, '$.equipment_id'), json_extract(p, '$.point'),"
                    " json_extract(p, '$.alarm_type'), MAX(seq) FROM"
                    " (SELECT seq, CAST(payload AS TEXT) AS p FROM events WHERE kind = 'alarm')"
                    " GROUP BY 1, 2, 3"
                ).fetchall()
            except sqlite3.Error:
                # Not readable either: after every durable event stored, to be safe; but the
                # storage alarm must not wait behind what cannot be read.
                storage = identity == (STORAGE_EQUIPMENT, STORAGE_POINT, STORAGE_FAULT)
                return 0 if storage else self._high_water
            self._durable_by_identity = {(eq, pt, at): int(seq) for eq, pt, at, seq in rows}
        return self._durable_by_identity.get(identity, 0)

    def _stored(self, event: AlarmEvent) -> None:
        """After a durable alarm: it orders later volatile events, and the table has its state."""
        identity = (event.equipment_id, event.point, event.alarm_type)
        if self._durable_by_identity is not None:
            self._durable_by_identity[identity] = event.seq
        self._volatile.forget(identity)

    def _write(self, work: Callable[[], T]) -> T:
        """Run ``work`` in one transaction; a storage error rolls back the in-memory counts
        with it and is raised as ``StorageError``."""
        saved = (self._bytes_events, self._bytes_telemetry)
        self._tx_high = self._high_water
        try:
            with self._db:
                result = work()
        except (sqlite3.Error, OSError) as err:
            self._bytes_events, self._bytes_telemetry = saved
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.rollback()
            fault = storage_error(err, directory=self.path.parent)
            if fault is None:
                raise
            raise fault from err
        self._high_water = self._tx_high
        self._last_write = self._clock.now()
        self._last_write_mono = self._clock.monotonic()
        return result

    # -- reading and acking --------------------------------------------------------------

    def next_batch(
        self,
        *,
        limit: int,
        exclude: set[tuple[str, int]],
        telemetry_limit: int | None = None,
    ) -> list[OutboxItem]:
        """Unacked items to publish: volatile events first, then events in seq order, live
        telemetry interleaved; at most ``telemetry_limit`` telemetry messages when given."""
        with self._lock:
            volatile: list[OutboxItem] = []
            for seq in self._volatile.publishable(
                durable_acked=self._acked_events, exclude=exclude
            ):
                if len(volatile) >= limit:
                    break
                kept = self._volatile.event(seq)
                volatile.append(
                    OutboxItem("volatile", seq, Channel.EVENTS, kept.payload, kept.created)
                )
            room = limit - len(volatile)
            if room <= 0:
                return volatile
            try:
                durable = self._durable_batch(room, exclude, telemetry_limit)
            except sqlite3.Error as err:
                self._reading_failed(err)
                return volatile
            self._read_failing = False
            return volatile + durable

    def _durable_batch(
        self, limit: int, exclude: set[tuple[str, int]], telemetry_limit: int | None
    ) -> list[OutboxItem]:
        # Durable events stored after an unacknowledged volatile one wait for its ack.
        gate = self._volatile.durable_gate()
        through = self._high_water if gate is None else gate
        events = [
            OutboxItem("event", seq, Channel.EVENTS, bytes(payload), created)
            for seq, payload, created in self._db.execute(
                "SELECT seq, payload, created FROM events WHERE seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?",
                (self._acked_events, through, limit + len(exclude)),
            )
            if ("event", seq) not in exclude
        ][:limit]
        room = limit - len(events)
        # While any event is unacked (even in flight), telemetry only rides along: the
        # newest first so the NOC sees live values, then the backlog oldest first.
        events_pending = self._db.execute(
            "SELECT COUNT(*) FROM events WHERE seq > ?", (self._acked_events,)
        ).fetchone()[0]
        t_limit = min(room, max(1, limit // TELEMETRY_EVERY)) if events_pending else room
        if telemetry_limit is not None:
            t_limit = min(t_limit, telemetry_limit)
        if t_limit <= 0:
            return events
        newest = self._telemetry_rows("DESC", 1, exclude)
        rest = self._telemetry_rows("ASC", t_limit + len(exclude), exclude)
        seen = {item.seq for item in newest}
        telemetry = newest + [item for item in rest if item.seq not in seen]
        return events + telemetry[:t_limit]

    def _telemetry_rows(
        self, order: str, limit: int, exclude: set[tuple[str, int]]
    ) -> list[OutboxItem]:
        rows = self._db.execute(
            f"SELECT seq, payload, created FROM telemetry ORDER BY seq {order} LIMIT ?",
            (limit + self._acked_telemetry_count(),),
        )
        return [
            OutboxItem("telemetry", seq, Channel.TELEMETRY, bytes(payload), created)
            for seq, payload, created in rows
            if ("telemetry", seq) not in exclude
            and not any(a <= seq <= b for a, b in self._acked_telemetry)
        ][:limit]

    def _acked_telemetry_count(self) -> int:
        return sum(b - a + 1 for a, b in self._acked_telemetry)

    def _reading_failed(self, err: sqlite3.Error) -> None:
        fault = storage_error(err, directory=self.path.parent)
        if fault is None:
            raise err
        if not self._read_failing:
            log.error("outbox %s cannot be read (%s): only in-memory events go out", self.path, err)
        self._read_failing = True
        if self._fault is None:
            self._enter_fault(fault)

    def ack(self, ack: AckMessage) -> int:
        """Delete what the collector committed; acks of another stream are ignored. While the
        file cannot be written, what was acked is remembered and deleted once it can."""
        with self._lock:
            if ack.stream_id == self._volatile.stream_id:
                return self._volatile.ack(ack.events_through)
            if ack.stream_id != self.stream_id:
                return 0
            self._acked_events = max(self._acked_events, ack.events_through)
            ranges = [(r.first, r.last) for r in ack.telemetry]
            if self._fault is None:
                try:
                    return self._write(lambda: self._delete_acked(ack.events_through, ranges))
                except StorageError as err:
                    self._enter_fault(err)
            self._acked_telemetry.extend(ranges)
            return 0

    def _delete_acked(self, events_through: int, ranges: Sequence[tuple[int, int]]) -> int:
        deleted_bytes = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM events WHERE seq <= ?",
            (events_through,),
        ).fetchone()[0]
        count = self._db.execute("DELETE FROM events WHERE seq <= ?", (events_through,)).rowcount
        self._bytes_events -= int(deleted_bytes)
        for first, last in ranges:
            t_bytes = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM telemetry WHERE seq BETWEEN ? AND ?",
                (first, last),
            ).fetchone()[0]
            count += self._db.execute(
                "DELETE FROM telemetry WHERE seq BETWEEN ? AND ?", (first, last)
            ).rowcount
            self._bytes_telemetry -= int(t_bytes)
        return int(count)

    def active_alarms(self) -> list[AlarmSnapshot]:
        """Alarms raised at the edge and not cleared (for the birth and for seeding), with those
        raised or cleared while the file could not be written."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT equipment_id, point, alarm_type, severity, value, since"
                    " FROM alarm_state ORDER BY since"
                ).fetchall()
            except sqlite3.Error as err:
                self._reading_failed(err)
            else:
                self._durable_alarms = [
                    AlarmSnapshot(
                        equipment_id=eq,
                        point=point,
                        alarm_type=atype,
                        severity=Severity(sev),
                        value=json.loads(value),
                        since=datetime.fromisoformat(since),
                    )
                    for eq, point, atype, sev, value, since in rows
                ]
            overlay = self._volatile.overlay()
            alarms = [
                a
                for a in self._durable_alarms
                if (a.equipment_id, a.point, a.alarm_type) not in overlay
            ]
            alarms += [a for a in overlay.values() if a is not None]
            return sorted(alarms, key=lambda a: a.since)

    def settled_through(self) -> tuple[int, int]:
        """Event and telemetry seqs at or below which nothing is pending any more (acked, or
        thinned): an ack repeating them deletes nothing."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                _, self._telemetry_settled = self._settled_on_disk()
            return self._acked_events, self._telemetry_settled

    def _settled_on_disk(self) -> tuple[int, int]:
        settled = []
        for table, counter in (("events", "event_seq"), ("telemetry", "telemetry_seq")):
            lowest = self._db.execute(f"SELECT MIN(seq) FROM {table}").fetchone()[0]
            high = int(self._meta(counter) or 0) if lowest is None else int(lowest) - 1
            settled.append(high)
        return settled[0], settled[1]

    def high_water_event_seq(self) -> int:
        """The highest event seq ever assigned in this stream."""
        return self._high_water

    def health(self) -> OutboxHealth:
        """Depth, age of the oldest unacked item, thinning, size, critical, recovered, and the
        storage under it: last write, free space, errors, events kept in memory or lost."""
        with self._lock:
            try:
                n_events = self._db.execute(
                    "SELECT COUNT(*) FROM events WHERE seq > ?", (self._acked_events,)
                ).fetchone()[0]
                n_tel = self._db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]
                oldest = self._db.execute(
                    "SELECT MIN(c) FROM (SELECT MIN(created) AS c FROM events WHERE seq > ?"
                    " UNION ALL SELECT MIN(created) FROM telemetry)",
                    (self._acked_events,),
                ).fetchone()[0]
                thinned = int(self._meta("thinned_total") or 0)
                self._last_counts = (int(n_events), int(n_tel), oldest, thinned)
            except sqlite3.Error as err:
                self._reading_failed(err)
            n_events, n_tel, oldest, thinned = self._last_counts
            self._free = free_bytes(self.path.parent)
            kept_oldest = self._volatile.oldest_created()
            if kept_oldest is not None:
                oldest = kept_oldest if oldest is None else min(oldest, kept_oldest)
            now = self._clock.now().timestamp()
            fault = self._fault
            return OutboxHealth(
                events_pending=n_events + self._volatile.pending,
                telemetry_pending=n_tel + len(self._pending_samples),
                oldest_unacked_age_s=max(0.0, now - oldest) if oldest is not None else None,
                thinned_total=thinned + self._dropped,
                size_bytes=self._bytes_events + self._bytes_telemetry,
                critical=self._bytes_events >= self._max_bytes,
                recovered=self.recovered,
                last_write=self._last_write,
                free_bytes=self._free,
                storage_error=None if fault is None else str(fault)[:500],
                storage_errors=self.storage_errors,
                volatile_pending=self._volatile.pending,
                volatile_lost=self._volatile.lost,
            )

    # -- internals -----------------------------------------------------------------------

    @property
    def _max_bytes(self) -> int:
        return int(self._settings.max_mib * 1024 * 1024)

    def _store_alarm(self, t: AlarmTransition, clock_synced: bool) -> AlarmEvent:
        seq = self._next("event_seq")
        event = self._alarm_event(t, stream_id=self.stream_id, seq=seq, synced=clock_synced)
        self._insert_event(seq, "alarm", encode(event))
        self._update_state(t)
        return event

    def _alarm_event(
        self, t: AlarmTransition, *, stream_id: str, seq: int, synced: bool
    ) -> AlarmEvent:
        """An alarm transition as the wire carries it, on the outbox's or the volatile stream."""
        return AlarmEvent(
            agent_id=self.agent_id,
            stream_id=stream_id,
            seq=seq,
            ts=t.ts,
            clock_synced=synced,
            clock_offset_s=self._clock_offset(),
            site_id=self.site_id,
            equipment_id=t.equipment_id,
            point=t.point,
            alarm_type=t.alarm_type,
            transition=t.transition,
            severity=t.severity,
            value=_finite_or_none(t.value),
            reason=t.reason,
            test=t.test,
        )

    def _insert_event(self, seq: int, kind: str, payload: bytes) -> None:
        self._db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            (seq, kind, payload, self._clock.now().timestamp()),
        )
        self._bytes_events += len(payload)
        self._enforce_bounds()

    def _state_event(
        self, *, name: str, detail: dict[str, object], clock_synced: bool
    ) -> StateEvent:
        seq = self._next("event_seq")
        event = self._state_message(
            name=name, detail=detail, stream_id=self.stream_id, seq=seq, synced=clock_synced
        )
        self._insert_event(seq, "state", encode(event))
        return event

    def _state_message(
        self, *, name: str, detail: dict[str, object], stream_id: str, seq: int, synced: bool
    ) -> StateEvent:
        """A state event of the agent as the wire carries it, on either stream."""
        return StateEvent(
            agent_id=self.agent_id,
            stream_id=stream_id,
            seq=seq,
            ts=self._clock.now(),
            clock_synced=synced,
            clock_offset_s=self._clock_offset(),
            site_id=self.site_id,
            name=name,
            detail=detail,
        )

    def _update_state(self, t: AlarmTransition) -> None:
        key = (t.equipment_id, t.point, t.alarm_type)
        if t.transition is Transition.RAISED:
            self._db.execute(
                "INSERT INTO alarm_state VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET severity = excluded.severity, value = excluded.value",
                (
                    *key,
                    t.severity.value,
                    json.dumps(_finite_or_none(t.value)),
                    t.ts.astimezone(UTC).isoformat(),
                ),
            )
        else:
            self._db.execute(
                "DELETE FROM alarm_state WHERE equipment_id = ? AND point = ? AND alarm_type = ?",
                key,
            )

    def _enforce_bounds(self) -> None:
        """Thin telemetry (oldest first) so events always fit; never drop an event."""
        reserve = self._settings.alarm_reserve * ALARM_ROW_BYTES
        budget = self._max_bytes - max(reserve, self._bytes_events)
        if self._bytes_telemetry <= max(budget, 0):
            return
        target = max(budget, 0) * 0.9
        rows = self._db.execute(
            "SELECT seq, LENGTH(payload) FROM telemetry ORDER BY seq"
        ).fetchall()
        dropped: list[int] = []
        freed = 0
        for seq, size in rows:
            if self._bytes_telemetry - freed <= target:
                break
            dropped.append(seq)
            freed += size
        if not dropped:
            return
        self._db.execute("DELETE FROM telemetry WHERE seq <= ?", (dropped[-1],))
        self._bytes_telemetry -= freed
        total = int(self._meta("thinned_total") or 0) + len(dropped)
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'thinned_total'", (str(total),))
        log.warning(
            "outbox full: thinned %d telemetry messages (seq %d..%d)",
            len(dropped),
            dropped[0],
            dropped[-1],
        )
        # The thinning itself is an event: the collector learns of it in sequence.
        self._state_event(
            name="telemetry_thinned",
            detail={"count": len(dropped), "first_seq": dropped[0], "last_seq": dropped[-1]},
            clock_synced=False,
        )

    def _next(self, key: str) -> int:
        value = int(self._meta(key) or 0) + 1
        self._db.execute("UPDATE meta SET value = ? WHERE key = ?", (str(value), key))
        if key == "event_seq":
            self._tx_high = value  # the high-water mark once this transaction commits
        return value

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _sum_bytes(self, table: str) -> int:
        return int(
            self._db.execute(f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM {table}").fetchone()[0]
        )


def _snapshot(t: AlarmTransition) -> AlarmSnapshot | None:
    """The state an alarm transition leaves its alarm in (None: clear)."""
    if t.transition is not Transition.RAISED:
        return None
    return AlarmSnapshot(
        equipment_id=t.equipment_id,
        point=t.point,
        alarm_type=t.alarm_type,
        severity=t.severity,
        value=_finite_or_none(t.value),
        since=t.ts,
    )


def _storage(err: BaseException, path: Path) -> StorageError:
    return storage_error(err, directory=path.parent) or StorageError("io_error", str(err))


def _no_offset() -> float | None:
    return None


def _finite_or_none(value: float | bool | str | None) -> float | bool | str | None:
    """An alarm's value as the contract carries it: a NaN or infinite reading is no value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Corrupt(Exception):
    """The file opened but failed the integrity check."""


def _connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    # ``create=False`` when reopening after a fault: a file that vanished is not this outbox.
    target = str(path) if create else f"file:{quote(str(path))}?mode=rw"
    conn = sqlite3.connect(
        target, isolation_level="DEFERRED", check_same_thread=False, uri=not create
    )
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit is fsynced, so an alarm that was stored survives a power cut.
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _check(conn: sqlite3.Connection) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()
    if result is None or result[0] != "ok":
        raise _Corrupt(f"quick_check: {result[0] if result else 'no answer'}")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and not {"meta", "events", "telemetry", "alarm_state"} <= tables:
        raise _Corrupt(f"unexpected tables {sorted(tables)}")
    if (
        "meta" in tables
        and conn.execute("SELECT value FROM meta WHERE key='stream_id'").fetchone() is None
    ):
        raise _Corrupt("no stream id")


def _move_aside(path: Path, clock: Clock) -> Path:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            shutil.move(src, Path(f"{aside}{suffix}"))
    return aside
