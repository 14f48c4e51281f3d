"""The standing reports (ticket summary, malfunctions, equipment detail), sorting, and /me."""

from __future__ import annotations

from datetime import timedelta

import pytest

from collector.telemetry.service import store_samples
from protocol import Severity, Transition
from tests.collector.conftest import Desk

ALPHA_SITE, BETA_SITE = "PM-LYO-0101", "PM-LYO-0102"


def test_ticket_summary_counts_and_time_to_restore(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, site=ALPHA_SITE)
    desk.alarm(Transition.RAISED, "fire", site=BETA_SITE, equipment="fire-panel")
    refs = {t["site_id"]: t["ref"] for t in desk.tickets()}
    desk.move(refs[ALPHA_SITE], "qualified", criticality="major")
    desk.move(refs[ALPHA_SITE], "in_progress")
    desk.clock.advance(minutes=90)
    desk.alarm(Transition.CLEARED, site=ALPHA_SITE)
    assert desk.restore(refs[ALPHA_SITE]).status_code == 200
    summary = desk.client.get("/api/v1/reports/tickets-summary").json()
    assert summary["opened"] == 2
    assert summary["by_state"] == {"restored": 1, "opened": 1}
    assert summary["by_criticality"] == {"major": 1, "critical": 1}
    assert (summary["restored"], summary["mean_time_to_restore_min"]) == (1, 90.0)
    mine = desk.client.get("/api/v1/reports/tickets-summary", headers=desk.alpha).json()
    assert mine["opened"] == 1  # the client sees the ticket at its own site only
    empty = desk.client.get(
        "/api/v1/reports/tickets-summary?since=2026-01-06T00:00:00Z&until=2026-01-07T00:00:00Z"
    ).json()
    assert empty["opened"] == 0
    backwards = desk.client.get(
        "/api/v1/reports/tickets-summary?since=2026-01-07T00:00:00Z&until=2026-01-06T00:00:00Z"
    )
    assert backwards.status_code == 422
    message = backwards.json()["detail"]
    assert "since" in message and "until" in message
    same_instant = desk.client.get(
        "/api/v1/reports/tickets-summary?since=2026-01-05T09:00:00Z&until=2026-01-05T10:00:00%2B01:00"
    )
    assert same_instant.status_code == 200  # an empty period, not an error
    assert same_instant.json()["opened"] == 0
    by_dates = desk.client.get("/api/v1/reports/tickets-summary?since=2026-01-05&until=2026-01-06")
    assert by_dates.json()["opened"] == 2  # Paris days


# Each case is a unit test in test_periods.py; here, that every route answers them as a 422.
REFUSED_DATES = (
    "until=212",  # not 212 seconds after 1970
    "since=1767603600",
    "since=2026-01-05T09:00:00",  # no offset
    "until=2026-02-30",
    "since=0001-01-01",  # Paris midnight before year 1 in UTC
    "until=9999-12-31T23:00:00-01:00",
)


@pytest.mark.parametrize(
    "path", ["tickets-summary", "malfunctions", f"equipment/{ALPHA_SITE}/door-main"]
)
def test_dates_are_rfc_3339_never_integers(desk: Desk, path: str) -> None:
    for query in REFUSED_DATES:
        answer = desk.client.get(f"/api/v1/reports/{path}?{query}")
        assert answer.status_code == 422, (query, answer.text)
        name = query.split("=")[0]
        assert answer.json()["detail"].startswith(f"query.{name}: {name} :")


def test_the_earliest_and_latest_instants_answer(desk: Desk) -> None:
    for query in (
        "until=0001-01-02T00:00:00Z",
        "since=9999-12-31T00:00:00Z&until=9999-12-31T23:59:59Z",
    ):
        answer = desk.client.get(f"/api/v1/reports/tickets-summary?{query}")
        assert answer.status_code == 200, answer.text


def test_malfunctions_group_by_type_and_site(desk: Desk) -> None:
    for site in (ALPHA_SITE, BETA_SITE, "NRO-LYO-01"):
        desk.alarm(Transition.RAISED, "hvac_fault", site=site, equipment="hvac-1")
    desk.alarm(Transition.RAISED, site=ALPHA_SITE)
    desk.alarm(Transition.CLEARED, "hvac_fault", site="NRO-LYO-01", equipment="hvac-1")
    desk.clock.advance(minutes=1)  # the period ends now, excluded
    report = desk.client.get("/api/v1/reports/malfunctions").json()
    assert report["total"] == 4
    assert report["by_alarm_type"][0] == {
        "key": "hvac_fault",
        "occurrences": 3,
        "sites": 3,
        "still_open": 2,
    }
    assert report["by_site"][0]["key"] == ALPHA_SITE
    alpha = desk.client.get("/api/v1/reports/malfunctions", headers=desk.alpha).json()
    assert {line["key"] for line in alpha["by_site"]} == {ALPHA_SITE, "NRO-LYO-01"}


def test_equipment_report_has_alarms_status_and_performance(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, "temp_high", site=ALPHA_SITE, equipment="env-1", point="t")
    with desk.sessions() as session:
        store_samples(
            session,
            [
                (
                    ALPHA_SITE,
                    "env-1",
                    "temperature",
                    "degC",
                    desk.clock.now() + timedelta(minutes=minute),
                    value,
                )
                for minute, value in enumerate((21.0, 23.0, 31.0))
            ],
        )
        session.commit()
    desk.clock.advance(minutes=5)
    report = desk.client.get(f"/api/v1/reports/equipment/{ALPHA_SITE}/env-1").json()
    assert [a["alarm_type"] for a in report["open_alarms"]] == ["temp_high"]
    assert report["alarms_by_type"] == {"temp_high": 1}
    assert report["performance"] == [
        {
            "point": "temperature",
            "samples": 3,
            "minimum": 21.0,
            "mean": 25.0,
            "maximum": 31.0,
            "unit": "degC",
        }
    ]
    other = desk.client.get(f"/api/v1/reports/equipment/{BETA_SITE}/env-1", headers=desk.alpha)
    assert other.status_code == 404


def test_alarms_filter_and_sort_by_severity(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, "hvac_fault", site=ALPHA_SITE, severity=Severity.MINOR)
    desk.alarm(Transition.RAISED, "fire", site=ALPHA_SITE, severity=Severity.CRITICAL)
    desk.alarm(Transition.RAISED, "temp_high", site=BETA_SITE, severity=Severity.MAJOR)
    worst_first = desk.client.get("/api/v1/alarms?state=open&sort=severity").json()["items"]
    assert [a["severity"] for a in worst_first] == ["critical", "major", "minor"]
    one_site = desk.client.get(f"/api/v1/alarms?site_id={BETA_SITE}&severity=major").json()
    assert one_site["total"] == 1
    bad = desk.client.get("/api/v1/alarms?sort=colour")
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("query.sort")


def test_me_says_who_is_calling(desk: Desk) -> None:
    assert desk.client.get("/api/v1/me").json() == {
        "user_id": "noc",
        "role": "noc",
        "client_id": None,
    }
    assert desk.client.get("/api/v1/me", headers=desk.alpha).json()["client_id"] == "op-alpha"
