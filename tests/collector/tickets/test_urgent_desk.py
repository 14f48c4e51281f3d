"""The urgent-requests desk: its own calendar (Monday-Saturday 08:00-17:00), its own target
and its own queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.collector.conftest import Desk

CONTACT = {"name": "A. Martin", "email": "noc@alpha.example", "phone": "+33 1 23 45 67 89"}


def _request(**overrides: Any) -> dict[str, Any]:
    body = {
        "hosting_ref": "HEB00001",
        "request_type": "hot_reprovisioning",
        "description": "re-provision the customer's port on the spare card",
        "technical_contact": CONTACT,
    }
    return {**body, **overrides}


def test_a_request_opened_saturday_1630_with_a_one_hour_target_is_due_monday_0830(
    desk: Desk,
) -> None:
    # Saturday 10 January 2026, 16:30 in Paris (15:30 UTC): 30 minutes before the desk closes.
    desk.clock.set(datetime(2026, 1, 10, 15, 30, tzinfo=UTC))
    opened = desk.client.post("/api/v1/urgent-requests", json=_request(), headers=desk.alpha)
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    assert (ticket["kind"], ticket["criticality"]) == ("urgent_request", "critical")
    sla = ticket["sla"]
    assert (sla["contract_id"], sla["calendar"], sla["gtr_min"]) == (
        "urgent-desk",
        "urgent_desk",
        60,
    )
    # 30 minutes on Saturday, Sunday closed, 30 minutes from Monday 08:00: 08:30 in Paris.
    assert sla["deadline"] == "2026-01-12T07:30:00Z"
    desk.clock.set(datetime(2026, 1, 11, 12, 0, tzinfo=UTC))  # Sunday noon: the clock stands
    queued = desk.client.get("/api/v1/urgent-requests").json()
    assert [t["ref"] for t in queued] == [ticket["ref"]]
    assert queued[0]["sla"]["remaining_min"] == 30


def test_the_queue_puts_the_nearest_deadline_first_and_a_client_sees_only_its_own(
    desk: Desk,
) -> None:
    desk.clock.set(datetime(2026, 1, 7, 8, 0, tzinfo=UTC))  # Wednesday 09:00 in Paris
    slow = desk.client.post(
        "/api/v1/urgent-requests", json=_request(criticality="minor", request_type="other")
    ).json()
    desk.clock.set(datetime(2026, 1, 7, 8, 30, tzinfo=UTC))
    fast = desk.client.post("/api/v1/urgent-requests", json=_request()).json()
    beta = desk.client.post(
        "/api/v1/urgent-requests", json=_request(hosting_ref="HEB00003", request_type="other")
    ).json()
    queue = [t["ref"] for t in desk.client.get("/api/v1/urgent-requests").json()]
    assert queue == [fast["ref"], beta["ref"], slow["ref"]]  # 10:30, 10:30 (later), 13:00
    mine = desk.client.get("/api/v1/urgent-requests", headers=desk.alpha).json()
    assert [t["ref"] for t in mine] == [fast["ref"], slow["ref"]]
    # Done requests leave the queue.
    for to in ("qualified", "in_progress", "cancelled"):
        assert desk.move(fast["ref"], to).status_code == 200
    assert fast["ref"] not in [t["ref"] for t in desk.client.get("/api/v1/urgent-requests").json()]


def test_a_client_cannot_ask_on_another_clients_service_and_bad_requests_say_why(
    desk: Desk,
) -> None:
    refused = desk.client.post(
        "/api/v1/urgent-requests", json=_request(hosting_ref="HEB00003"), headers=desk.alpha
    )
    assert refused.status_code == 422
    assert "HEB00003 is not one of your services" in refused.text
    unknown = desk.client.post("/api/v1/urgent-requests", json=_request(request_type="coffee"))
    assert unknown.status_code == 422 and "request_type" in unknown.text
    level = desk.client.post("/api/v1/urgent-requests", json=_request(criticality="P1"))
    assert level.status_code == 422 and "P1" in level.text
