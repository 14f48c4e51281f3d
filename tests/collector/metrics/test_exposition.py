"""``GET /metrics`` as a Prometheus user reads it: every family there from the start with its
zero series, and figures that move when agents, sites, tickets and ingest do."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.ingest.admission import DEAD_LETTER_REASONS
from collector.ingest.service import IngestStats
from collector.metrics import render_metrics
from collector.metrics.work import TIME_LEFT_BUCKETS, criticalities
from protocol import Severity, Transition
from tests.collector.conftest import Desk, enrol
from tests.collector.metrics.scrape import scrape, value
from tests.collector.sites.test_inventory_editing import birth

ROOT = Path(__file__).resolve().parents[3]
DEMO_SITES = ("NRO-LYO-01", "PM-LYO-0101", "PM-LYO-0102")
DEMO_AGENTS = ("nro-lyon-01", "pm-lyon-0101", "pm-lyon-0102")


def test_every_family_is_there_from_the_start_with_its_zero_series(desk: Desk) -> None:
    families = scrape(desk)
    assert {
        "shelterwatch_build_info",
        "shelterwatch_agents",
        "shelterwatch_sites",
        "shelterwatch_open_tickets",
        "shelterwatch_open_tickets_by_time_left",
        "shelterwatch_sla_breached_open_tickets",
        "shelterwatch_open_alarms",
        "shelterwatch_dead_letters",
        "shelterwatch_agent_listener_datagrams",
        "shelterwatch_agent_listener_rejected",
        "shelterwatch_http_request_duration_seconds",
        "process_start_time_seconds",
        "process_resident_memory_bytes",
        "python_info",
    } <= set(families)
    assert value(families, "shelterwatch_build_info", version="0.1.0") == 1
    # Nothing is open: each series is there, at 0, for an alert or a panel to find.
    for severity in Severity:
        for state in ("active", "unknown"):
            assert value(families, "shelterwatch_open_alarms", severity=severity, state=state) == 0
    for level in ("critical", "major", "minor", "P1", "P4"):
        assert value(families, "shelterwatch_open_tickets", criticality=level) == 0
        for bucket in TIME_LEFT_BUCKETS:
            assert (
                value(
                    families,
                    "shelterwatch_open_tickets_by_time_left",
                    criticality=level,
                    time_left=bucket,
                )
                == 0
            )
    for reason in DEAD_LETTER_REASONS:
        assert value(families, "shelterwatch_dead_letters_total", reason=reason) == 0
    # The inventory's agents were never heard from: unreachable, and so are their sites.
    assert value(families, "shelterwatch_agents", state="connected") == 0
    assert value(families, "shelterwatch_agents", state="unreachable") == 3
    assert value(families, "shelterwatch_sites", state="unreachable") == 3
    # Fleet totals: no label names a site or an agent.
    labels = {v for samples in families.values() for s in samples for v in s.labels.values()}
    assert not labels & {*DEMO_SITES, *DEMO_AGENTS}


def _sites(desk: Desk) -> dict[str, float]:
    families = scrape(desk)
    return {
        state: value(families, "shelterwatch_sites", state=state)
        for state in ("unreachable", "alarm", "ok")
    }


def test_an_agent_falling_silent_turns_unreachable_and_the_sites_agree_with_the_site_list(
    desk: Desk, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    birth(sessions, clock, site="PM-LYO-0101")
    birth(sessions, clock, site="PM-LYO-0102")
    desk.alarm(Transition.RAISED, site="PM-LYO-0102")
    families = scrape(desk)
    assert value(families, "shelterwatch_agents", state="connected") == 2
    assert value(families, "shelterwatch_agents", state="unreachable") == 1
    assert _sites(desk) == {"unreachable": 1, "alarm": 1, "ok": 1}
    clock.advance(minutes=10)  # past the heartbeat timeout: both fall silent
    desk.timers()
    families = scrape(desk)
    assert value(families, "shelterwatch_agents", state="connected") == 0
    assert value(families, "shelterwatch_agents", state="unreachable") == 3
    # The dashboard and the NOC's site list say the same.
    assert _sites(desk) == {
        state: len(desk.client.get(f"/api/v1/sites?status={state}").json())
        for state in ("unreachable", "alarm", "ok")
    }
    assert _sites(desk) == {"unreachable": 3, "alarm": 0, "ok": 0}


def _time_left(desk: Desk, criticality: str) -> dict[str, float]:
    """The buckets holding tickets of that criticality."""
    families = scrape(desk)
    buckets = {
        bucket: value(
            families,
            "shelterwatch_open_tickets_by_time_left",
            criticality=criticality,
            time_left=bucket,
        )
        for bucket in TIME_LEFT_BUCKETS
    }
    return {bucket: n for bucket, n in buckets.items() if n}


def test_a_ticket_nearing_its_breach_moves_down_the_time_left_buckets(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)  # a major door alarm: 480 min GTR, 24/7
    opened = desk.clock.now()
    steps = [
        (timedelta(0), "ge_4h"),
        (timedelta(hours=4, minutes=1), "lt_4h"),
        (timedelta(hours=7, minutes=1), "lt_1h"),
        (timedelta(hours=7, minutes=46), "lt_15m"),
        (timedelta(hours=8), "lt_15m"),  # exactly at the deadline: not yet late
        (timedelta(hours=8, seconds=1), "breached"),
    ]
    seen = []
    for after, _ in steps:
        desk.clock.set(opened + after)
        seen.append(_time_left(desk, "major"))
    assert seen == [{bucket: 1} for _, bucket in steps]
    assert value(scrape(desk), "shelterwatch_open_tickets", criticality="major") == 1


def test_a_ticket_waiting_for_the_client_is_frozen_and_a_restored_one_stopped(
    desk: Desk,
) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    for state in ("qualified", "in_progress", "waiting_client"):
        assert desk.move(ref, state).status_code == 200
    desk.clock.advance(hours=20)  # frozen time: no breach
    assert _time_left(desk, "major") == {"frozen": 1}
    assert desk.move(ref, "in_progress").status_code == 200
    assert _time_left(desk, "major") == {"ge_4h": 1}
    desk.alarm(Transition.CLEARED)
    assert desk.restore(ref).status_code == 200
    assert _time_left(desk, "major") == {"stopped": 1}


def test_ingest_lag_is_a_histogram_of_every_message(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    stats = IngestStats()
    stats.lag.observe([0.004, 0.3, 42.0])
    stats.lag.observe([0.5])
    text = render_metrics(sessions, lambda: stats, now=clock.now()).decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    lag = "shelterwatch_ingest_lag_seconds"
    assert [value(families, f"{lag}_bucket", le=le) for le in ("0.01", "0.5", "30.0", "60.0")] == [
        1,
        3,
        3,
        4,
    ]
    assert value(families, f"{lag}_bucket", le="+Inf") == 4
    assert value(families, f"{lag}_count") == 4
    assert value(families, f"{lag}_sum") == pytest.approx(42.804)


def test_every_documented_dead_letter_reason_has_its_series() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    table = protocol.split("| reason | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)`(?: / `(\w+)`)?", table, re.M))
    assert {r for pair in documented for r in pair if r} == set(DEAD_LETTER_REASONS)


def test_every_criticality_of_every_contract_is_shown() -> None:
    assert criticalities() == ["critical", "major", "minor", "P1", "P2", "P3", "P4"]


def test_a_scrape_costs_the_same_queries_for_three_sites_or_three_hundred(
    desk: Desk, sessions: sessionmaker[Session]
) -> None:
    def statements() -> int:
        count = 0

        def counted(*_: object) -> None:
            nonlocal count
            count += 1

        engine = sessions.kw["bind"]
        event.listen(engine, "before_cursor_execute", counted)
        try:
            scrape(desk)
        finally:
            event.remove(engine, "before_cursor_execute", counted)
        return count

    few = statements()
    enrol(sessions, {f"agent-{i}": f"PM-X-{i:04d}" for i in range(300)})
    for i in range(0, 300, 30):
        desk.alarm(Transition.RAISED, site=f"PM-X-{i:04d}")
    assert statements() == few
    assert value(scrape(desk), "shelterwatch_agents", state="unreachable") == 303


def test_open_alarms_are_counted_acknowledged_or_not(desk: Desk) -> None:
    for severity in Severity:
        for answer in ("yes", "no"):
            labels = {"severity": severity, "acknowledged": answer}
            assert value(scrape(desk), "shelterwatch_open_alarms_acknowledged", **labels) == 0
    desk.alarm(Transition.RAISED)
    desk.alarm(Transition.RAISED, "fire", equipment="fire-1", severity=Severity.CRITICAL)
    door = desk.client.get("/api/v1/alarms", params={"alarm_type": "door_open"}).json()["items"]
    assert desk.client.post(f"/api/v1/alarms/{door[0]['id']}/acknowledge").status_code == 200
    families = scrape(desk)
    name = "shelterwatch_open_alarms_acknowledged"
    assert value(families, name, severity="major", acknowledged="yes") == 1
    assert value(families, name, severity="major", acknowledged="no") == 0
    assert value(families, name, severity="critical", acknowledged="no") == 1
