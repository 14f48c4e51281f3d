"""Inspections: test triggers tick the checklist and open no ticket, unless a fire stays on or
a test outlives the inspection; the report is stored; sites due are listed."""

from __future__ import annotations

from typing import Any

from protocol import Severity, Transition
from tests.collector.conftest import Desk

SITE = "PM-LYO-0101"


def start(desk: Desk, **body: Any) -> Any:
    return desk.client.post(
        "/api/v1/inspections", json={"site_id": SITE, "duration_min": 30, **body}
    )


def trigger(desk: Desk, alarm_type: str, transition: Transition) -> None:
    desk.alarm(transition, alarm_type, site=SITE, equipment=f"{alarm_type}-sensor", point="in")


def test_an_inspection_records_tests_ticks_the_checklist_and_stores_the_report(
    desk: Desk,
) -> None:
    started = start(desk, technician="J. Martin")
    assert started.status_code == 201, started.text
    inspection = started.json()
    assert inspection["technician"] == "J. Martin"
    for alarm_type in ("door_open", "fire", "hvac_fault"):
        trigger(desk, alarm_type, Transition.RAISED)
        desk.clock.advance(seconds=40)
        trigger(desk, alarm_type, Transition.CLEARED)
    trigger(desk, "mains_lost", Transition.RAISED)  # not yet back: energy is not ticked
    assert desk.tickets() == []  # tests, not incidents
    alarms = desk.client.get(f"/api/v1/alarms?site_id={SITE}").json()["items"]
    assert {a["alarm_type"] for a in alarms} == {"door_open", "fire", "hvac_fault", "mains_lost"}
    assert all(a["test"] for a in alarms)  # the NOC sees them, flagged as tests
    trigger(desk, "mains_lost", Transition.CLEARED)
    done = desk.client.post(
        f"/api/v1/inspections/{inspection['id']}/complete", json={"notes": "filter changed"}
    )
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["status"] == "completed"
    assert {k: v["done"] for k, v in report["items"].items()} == {
        "fire_detection": True,
        "air_conditioning": True,
        "access_control": True,
        "environment": False,
        "energy": True,
    }
    assert report["notes"] == "filter changed"
    due = {d["site_id"]: d for d in desk.client.get("/api/v1/inspections/due").json()}
    assert SITE not in due
    assert due["NRO-LYO-01"]["overdue"] is True  # never inspected
    again = desk.client.post(f"/api/v1/inspections/{inspection['id']}/complete", json={})
    assert again.status_code == 409


def test_a_fire_still_on_after_the_limit_becomes_an_incident(desk: Desk) -> None:
    start(desk)
    trigger(desk, "fire", Transition.RAISED)
    desk.clock.advance(seconds=299)
    desk.timers()
    assert desk.tickets() == []
    desk.clock.advance(seconds=1)
    desk.timers()
    tickets = desk.tickets()
    assert [(t["title"].split()[0], t["criticality"]) for t in tickets] == [("fire", "critical")]
    alarm = desk.client.get(f"/api/v1/alarms?site_id={SITE}").json()["items"][0]
    assert alarm["test"] is False


def test_a_test_still_active_when_the_inspection_ends_becomes_an_incident(desk: Desk) -> None:
    start(desk, duration_min=10)
    trigger(desk, "door_open", Transition.RAISED)
    desk.clock.advance(minutes=9)
    desk.timers()
    assert desk.tickets() == []
    desk.clock.advance(minutes=1)
    desk.timers()
    assert [t["title"].split()[0] for t in desk.tickets()] == ["door_open"]
    inspections = desk.client.get(f"/api/v1/inspections?site_id={SITE}").json()
    assert inspections[0]["status"] == "ended"  # no report was filed
    # After the inspection, a trigger is an incident at once.
    desk.alarm(Transition.RAISED, "hvac_fault", site=SITE, severity=Severity.MAJOR)
    assert len(desk.tickets()) == 2


def test_bad_inspection_requests_change_nothing(desk: Desk) -> None:
    unknown = start(desk, site_id="PM-NOWHERE")
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404,
        "site PM-NOWHERE not found: no inspection started",
    )
    assert start(desk, duration_min=0).status_code == 422
    client = desk.client.post("/api/v1/inspections", json={"site_id": SITE}, headers=desk.alpha)
    assert client.status_code == 403
    assert start(desk).status_code == 201
    twice = start(desk)
    assert twice.status_code == 409
    assert "already running" in twice.json()["detail"]
    assert len(desk.client.get("/api/v1/inspections").json()) == 1
    assert desk.client.get("/api/v1/inspections/999").status_code == 404
