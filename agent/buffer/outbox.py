"""The durable outbox: SQLite in WAL mode, one file per agent, one stream per file.

Why SQLite: an alarm must be on disk before it is published and stay there until the
collector has committed it; SQLite WAL gives atomic, fsynced commits at thousands per second
on this class of hardware, where a JSON-file store rewrites everything on each insert.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agent.buffer.settings import OutboxSettings
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

log = logging.getLogger(__name__)

# Space kept per alarm row when sizing the reserve (payload ~450 bytes + row overhead).
ALARM_ROW_BYTES = 640
# While events are pending, one telemetry message rides along every this many events.
TELEMETRY_EVERY = 10

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

    space: Literal["event", "telemetry"]
    seq: int
    channel: Channel
    payload: bytes
    created: float

    @property
    def key(self) -> tuple[str, int]:
        """Identity of the item within the stream."""
        return (self.space, self.seq)


class Outbox:
    """Stores events (gapless seq, fsync per alarm) and telemetry (group-committed, thinnable)."""

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
    ) -> None:
        self._db = conn
        self.path = path
        self._settings = settings
        self.agent_id = agent_id
        self.site_id = site_id
        self._clock = clock
        self.recovery_reason = recovery_reason
        self.recovered = recovery_reason is not None
        self._lock = threading.RLock()
        self._pending_samples: list[tuple[list[TelemetrySample], bool, datetime]] = []
        self._pending_since: float | None = None
        self.stream_id = self._meta("stream_id") or ""
        self._bytes_events = self._sum_bytes("events")
        self._bytes_telemetry = self._sum_bytes("telemetry")

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, *, settings: OutboxSettings, agent_id: str, site_id: str, clock: Clock) -> Outbox:
        """Open (or create) the outbox; a corrupt file is moved aside and a new stream starts."""
        path = settings.path
        path.parent.mkdir(parents=True, exist_ok=True)
        reason: str | None = None
        conn: sqlite3.Connection | None = None
        if path.exists():
            try:
                conn = _connect(path)
                _check(conn)
            except (sqlite3.DatabaseError, _Corrupt) as err:
                reason = f"{type(err).__name__}: {err}"
                if conn is not None:
                    conn.close()
                conn = None
                aside = _move_aside(path, clock)
                log.error("outbox %s is corrupt (%s); moved aside to %s", path, reason, aside)
        if conn is None:
            conn = _connect(path)
        conn.executescript(_SCHEMA)
        with conn:
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('stream_id', ?)", (uuid.uuid4().hex,))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('event_seq', '0')")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('telemetry_seq', '0')")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('thinned_total', '0')")
        return cls(
            conn,
            path=path,
            settings=settings,
            agent_id=agent_id,
            site_id=site_id,
            clock=clock,
            recovery_reason=reason,
        )

    def close(self) -> None:
        """Commit pending telemetry and close the file."""
        with self._lock:
            self.flush()
            self._db.close()

    # -- writing -------------------------------------------------------------------------

    def append_alarm(self, t: AlarmTransition, *, clock_synced: bool) -> AlarmEvent:
        """Store an alarm transition with the next seq; durable (fsync) when this returns."""
        with self._lock, self._db:
            seq = self._next("event_seq")
            event = AlarmEvent(
                agent_id=self.agent_id,
                stream_id=self.stream_id,
                seq=seq,
                ts=t.ts,
                clock_synced=clock_synced,
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
            self._insert_event(seq, "alarm", encode(event))
            self._update_state(t)
        return event

    def append_state(
        self, *, name: str, detail: dict[str, object], clock_synced: bool
    ) -> StateEvent:
        """Store a state event of the agent itself (same gapless sequence as alarms)."""
        with self._lock, self._db:
            event = self._state_event(name=name, detail=detail, clock_synced=clock_synced)
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
            self._pending_samples.append((batch, clock_synced, self._clock.now()))
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
            with self._db:
                for batch, synced, ts in pending:
                    seq = self._next("telemetry_seq")
                    message = TelemetryMessage(
                        agent_id=self.agent_id,
                        stream_id=self.stream_id,
                        seq=seq,
                        ts=ts,
                        clock_synced=synced,
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
            return len(pending)

    # -- reading and acking --------------------------------------------------------------

    def next_batch(
        self,
        *,
        limit: int,
        exclude: set[tuple[str, int]],
        telemetry_limit: int | None = None,
    ) -> list[OutboxItem]:
        """Unacked items to publish: events first in seq order, live telemetry interleaved;
        at most ``telemetry_limit`` telemetry messages when given."""
        with self._lock:
            events = [
                OutboxItem("event", seq, Channel.EVENTS, bytes(payload), created)
                for seq, payload, created in self._db.execute(
                    "SELECT seq, payload, created FROM events ORDER BY seq LIMIT ?",
                    (limit + len(exclude),),
                )
                if ("event", seq) not in exclude
            ][:limit]
            room = limit - len(events)
            # While any event is unacked (even in flight), telemetry only rides along: the
            # newest first so the NOC sees live values, then the backlog oldest first.
            events_pending = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
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
            (limit,),
        )
        return [
            OutboxItem("telemetry", seq, Channel.TELEMETRY, bytes(payload), created)
            for seq, payload, created in rows
            if ("telemetry", seq) not in exclude
        ]

    def ack(self, ack: AckMessage) -> int:
        """Delete what the collector committed; acks of another stream are ignored."""
        if ack.stream_id != self.stream_id:
            return 0
        with self._lock, self._db:
            deleted_bytes = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM events WHERE seq <= ?",
                (ack.events_through,),
            ).fetchone()[0]
            count = self._db.execute(
                "DELETE FROM events WHERE seq <= ?", (ack.events_through,)
            ).rowcount
            self._bytes_events -= int(deleted_bytes)
            for rng in ack.telemetry:
                t_bytes = self._db.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM telemetry"
                    " WHERE seq BETWEEN ? AND ?",
                    (rng.first, rng.last),
                ).fetchone()[0]
                count += self._db.execute(
                    "DELETE FROM telemetry WHERE seq BETWEEN ? AND ?", (rng.first, rng.last)
                ).rowcount
                self._bytes_telemetry -= int(t_bytes)
        return int(count)

    def active_alarms(self) -> list[AlarmSnapshot]:
        """Alarms raised at the edge and not cleared (for the birth and for seeding)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT equipment_id, point, alarm_type, severity, value, since FROM alarm_state"
                " ORDER BY since"
            ).fetchall()
        return [
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

    def settled_through(self) -> tuple[int, int]:
        """Event and telemetry seqs at or below which nothing is pending any more (acked, or
        thinned): an ack repeating them deletes nothing."""
        with self._lock:
            settled = []
            for table, counter in (("events", "event_seq"), ("telemetry", "telemetry_seq")):
                lowest = self._db.execute(f"SELECT MIN(seq) FROM {table}").fetchone()[0]
                high = int(self._meta(counter) or 0) if lowest is None else int(lowest) - 1
                settled.append(high)
            return settled[0], settled[1]

    def high_water_event_seq(self) -> int:
        """The highest event seq ever assigned in this stream."""
        with self._lock:
            return int(self._meta("event_seq") or 0)

    def health(self) -> OutboxHealth:
        """Depth, age of the oldest unacked item, thinning, size, critical, recovered."""
        with self._lock:
            n_events = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            n_tel = self._db.execute("SELECT COUNT(*) FROM telemetry").fetchone()[0]
            oldest = self._db.execute(
                "SELECT MIN(c) FROM (SELECT MIN(created) AS c FROM events"
                " UNION ALL SELECT MIN(created) FROM telemetry)"
            ).fetchone()[0]
            now = self._clock.now().timestamp()
            return OutboxHealth(
                events_pending=int(n_events),
                telemetry_pending=int(n_tel) + len(self._pending_samples),
                oldest_unacked_age_s=max(0.0, now - oldest) if oldest is not None else None,
                thinned_total=int(self._meta("thinned_total") or 0),
                size_bytes=self._bytes_events + self._bytes_telemetry,
                critical=self._bytes_events >= self._max_bytes,
                recovered=self.recovered,
            )

    # -- internals -----------------------------------------------------------------------

    @property
    def _max_bytes(self) -> int:
        return int(self._settings.max_mib * 1024 * 1024)

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
        event = StateEvent(
            agent_id=self.agent_id,
            stream_id=self.stream_id,
            seq=seq,
            ts=self._clock.now(),
            clock_synced=clock_synced,
            site_id=self.site_id,
            name=name,
            detail=detail,
        )
        self._insert_event(seq, "state", encode(event))
        return event

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
        return value

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _sum_bytes(self, table: str) -> int:
        return int(
            self._db.execute(f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM {table}").fetchone()[0]
        )


def _finite_or_none(value: float | bool | str | None) -> float | bool | str | None:
    """An alarm's value as the contract carries it: a NaN or infinite reading is no value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Corrupt(Exception):
    """The file opened but failed the integrity check."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
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
