"""Expectations checked against what users see: the NOC API, and for "nothing lost" the
agents' outboxes beside the collector's database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from simulators.scenario.schema import (
    AlarmExpectation,
    DeliveredExpectation,
    Expectation,
    TicketExpectation,
)


class Verdict(StrEnum):
    """Where an expectation stands."""

    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"


@dataclass
class Outcome:
    """An expectation, its verdict, and what was seen last (the failure message)."""

    index: int
    expectation: Expectation
    verdict: Verdict = Verdict.PENDING
    seen: str = "not checked yet"
    at_s: float | None = None

    @property
    def title(self) -> str:
        """A one-line description for reports."""
        return self.expectation.name or describe(self.expectation)


def describe(expectation: Expectation) -> str:
    """What an expectation asks, in words."""
    if expectation.never:
        positive = describe(expectation.model_copy(update={"never": False}))
        return f"never: {positive}"
    window = f"within {expectation.within_s:.0f} s after +{expectation.after_s:.0f} s"
    if isinstance(expectation, AlarmExpectation):
        severity = f" ({expectation.severity})" if expectation.severity else ""
        what = f"{expectation.alarm_type} {expectation.state}{severity}"
        return f"alarm {what} at {expectation.site} {window}"
    if isinstance(expectation, TicketExpectation):
        what = expectation.kind or "ticket"
        where = f" at {expectation.site}" if expectation.site else ""
        if expectation.count == 0:
            span = f"{expectation.within_s:.0f} s after +{expectation.after_s:.0f} s"
            return f"no {what}{where} during {span}"
        extras = [
            f"{k} {v}"
            for k, v in (("criticality", expectation.criticality), ("state", expectation.state))
            if v
        ]
        if expectation.nominal is not None:
            extras.append("back to nominal" if expectation.nominal else "not back to nominal")
        count = f"exactly {expectation.count} " if expectation.count is not None else ""
        return f"{count}{what}{where}{' ' + ', '.join(extras) if extras else ''} {window}"
    return f"nothing lost: every event acknowledged and stored without gaps {window}"


class Checker:
    """Evaluates one expectation at a time; returns (satisfied, what was seen)."""

    def __init__(
        self,
        *,
        api: Callable[..., httpx.Response],
        db_url: str | None,
        outboxes: Callable[[], list[Any]],
    ) -> None:
        self._api = api
        self._db_url = db_url
        self._outboxes = outboxes

    def check(self, expectation: Expectation) -> tuple[bool, str]:
        """Whether the expectation holds right now, and what was seen."""
        if isinstance(expectation, AlarmExpectation):
            return self._alarm(expectation)
        if isinstance(expectation, TicketExpectation):
            return self._tickets(expectation)
        return self._delivered(expectation)

    def _alarm(self, e: AlarmExpectation) -> tuple[bool, str]:
        params: dict[str, Any] = {"site_id": e.site, "alarm_type": e.alarm_type, "limit": 500}
        if e.equipment:
            params["equipment_id"] = e.equipment
        items = self._get("/api/v1/alarms", params)["items"]
        if not items:
            return False, f"no {e.alarm_type} alarm at {e.site}"
        for alarm in items:
            if alarm["state"] == e.state and (
                e.severity is None or alarm["severity"] == e.severity
            ):
                return (
                    True,
                    f"{alarm['alarm_type']} {alarm['state']} {alarm['severity']}"
                    f" on {alarm['equipment_id']}",
                )
        seen = ", ".join(f"{a['equipment_id']} {a['state']} {a['severity']}" for a in items)
        return False, f"{e.alarm_type} at {e.site} is {seen}"

    def _tickets(self, e: TicketExpectation) -> tuple[bool, str]:
        params: dict[str, Any] = {"limit": 500}
        if e.site:
            params["site_id"] = e.site
        items = [
            t
            for t in self._get("/api/v1/tickets", params)["items"]
            if (e.kind is None or t["kind"] == e.kind)
            and (e.criticality is None or t["criticality"] == e.criticality)
            and (e.state is None or t["state"] == e.state)
            and (e.nominal is None or (t["return_to_nominal_at"] is not None) == e.nominal)
        ]
        seen = ", ".join(
            f"{t['ref']} {t['kind']} {t['state']} {t['criticality']}" for t in items[:5]
        )
        summary = f"{len(items)} matching" + (f": {seen}" if seen else "")
        if e.count is not None:
            return len(items) == e.count, summary
        return bool(items), summary

    def _delivered(self, _e: DeliveredExpectation) -> tuple[bool, str]:
        if self._db_url is None:
            return False, "cannot be checked: give --db with an external collector"
        problems: list[str] = []
        engine = create_engine(self._db_url)
        try:
            with engine.connect() as conn:
                for agent_id, outbox_path in self._outboxes():
                    pending, stream = _outbox_state(outbox_path)
                    if pending:
                        problems.append(f"{agent_id}: {pending} event(s) not acknowledged")
                        continue
                    row = conn.execute(
                        text(
                            "SELECT COUNT(*), COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0)"
                            " FROM inbound_events"
                            " WHERE agent_id = :a AND stream_id = :s"
                        ),
                        {"a": agent_id, "s": stream},
                    ).one()
                    applied = conn.execute(
                        text(
                            "SELECT applied_through FROM streams"
                            " WHERE agent_id = :a AND stream_id = :s"
                        ),
                        {"a": agent_id, "s": stream},
                    ).scalar()
                    # Applied events are pruned after their retention: complete from the
                    # lowest one kept.
                    count, low, top = int(row[0]), int(row[1]), int(row[2])
                    if count != top - low + 1:
                        problems.append(
                            f"{agent_id}: {top - low + 1 - count} event(s) missing below seq {top}"
                        )
                    elif count and (applied or 0) != top:
                        problems.append(
                            f"{agent_id}: applied through {applied}, stored through {top}"
                        )
        finally:
            engine.dispose()
        return not problems, "; ".join(problems) or "every stream complete and applied"

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = self._api("GET", path, params=params)
        response.raise_for_status()
        return response.json()


def _outbox_state(path: Any) -> tuple[int, str]:
    """(events not yet acknowledged, stream id) of an agent's outbox, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        pending = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        row = conn.execute("SELECT value FROM meta WHERE key = 'stream_id'").fetchone()
        return pending, str(row[0]) if row else ""
    finally:
        conn.close()
