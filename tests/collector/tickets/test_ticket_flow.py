"""Tickets through the API with a manual clock: lifecycle, SLA clock, timers, recurrence."""

from __future__ import annotations

import pytest

from protocol import Transition
from tests.collector.conftest import Desk


def test_the_whole_lifecycle_with_a_freeze_and_auto_close_at_exactly_48_hours(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    assert desk.move(ref, "qualified", criticality="critical").status_code == 200
    desk.clock.advance(minutes=30)
    assert desk.move(ref, "in_progress").status_code == 200
    desk.clock.advance(minutes=30)
    assert desk.move(ref, "waiting_client", detail="access badge?").status_code == 200
    desk.clock.advance(hours=10)  # frozen: not counted
    assert desk.move(ref, "in_progress", detail="client answered").status_code == 200
    sla = desk.client.get(f"/api/v1/tickets/{ref}").json()["sla"]
    assert (sla["elapsed_min"], sla["frozen_min"], sla["gtr_min"]) == (60.0, 600.0, 240.0)
    desk.alarm(Transition.CLEARED)
    desk.clock.advance(minutes=5)
    assert desk.restore(ref).status_code == 200
    desk.clock.advance(hours=47, minutes=59)
    desk.timers()
    assert desk.client.get(f"/api/v1/tickets/{ref}").json()["state"] == "restored"
    desk.clock.advance(minutes=1)
    desk.timers()
    detail = desk.client.get(f"/api/v1/tickets/{ref}").json()
    assert detail["state"] == "closed"
    assert [op["action"] for op in detail["operations"]] == [
        "opened",
        "criticality",
        "qualified",
        "in_progress",
        "waiting_client",
        "in_progress",
        "return_to_nominal",
        "restored",
        "auto_closed",
    ]


def test_an_illegal_transition_is_refused_with_the_allowed_ones(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    response = desk.move(ref, "restored")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"ticket {ref}: cannot go from opened to restored; allowed: cancelled, qualified"
    )


def test_stale_if_match_is_refused(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    etag = desk.client.get(f"/api/v1/tickets/{ref}").headers["etag"]
    assert desk.move(ref, "qualified").status_code == 200
    stale = desk.client.post(
        f"/api/v1/tickets/{ref}/transition", json={"to": "cancelled"}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412


@pytest.mark.parametrize(
    "if_match",
    [
        '"' + "9" * 5000 + '"',  # once a 500
        '"garbage"',  # once ignored: the move went through unchecked
        "3",  # the version without the quotes of an ETag
        'W/"3"',
        '"9223372036854775808"',  # past a 64-bit version
    ],
)
def test_an_if_match_that_is_no_etag_is_a_400_and_changes_nothing(
    desk: Desk, if_match: str
) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    response = desk.client.post(
        f"/api/v1/tickets/{ref}/transition",
        json={"to": "qualified"},
        headers={"If-Match": if_match},
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(
        'If-Match: expected the ETag the ticket was read with, e.g. "7"; got '
    )
    assert desk.ticket(ref)["state"] == "opened"


@pytest.mark.parametrize("current", [True, False])
def test_a_current_etag_or_a_star_lets_the_move_through(desk: Desk, current: bool) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    etag = desk.client.get(f"/api/v1/tickets/{ref}").headers["etag"] if current else "*"
    response = desk.client.post(
        f"/api/v1/tickets/{ref}/transition", json={"to": "qualified"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] != etag


def test_escalation_thresholds_fire_once_each_and_not_while_frozen(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, alarm_type="fire")  # critical: GTR 4 h on 24/7
    ref = desk.tickets()[0]["ref"]
    levels = []
    for _ in range(6 * 4):
        desk.clock.advance(minutes=15)
        desk.timers()
        desk.timers()  # running twice changes nothing
        levels.append(desk.client.get(f"/api/v1/tickets/{ref}").json()["escalation_level"])
    assert levels[10:12] == [1, 2] and levels[14:16] == [2, 3]  # 75 % at 3 h, 100 % at 4 h
    ops = desk.client.get(f"/api/v1/tickets/{ref}").json()["operations"]
    assert [op["detail"] for op in ops if op["action"] in ("escalated", "sla_threshold")] == [
        "SLA at 50% of the GTR",
        "SLA at 75% of the GTR",
        "SLA at 100% of the GTR",
    ]
    sla = desk.client.get(f"/api/v1/tickets/{ref}").json()["sla"]
    assert sla["breached"] and sla["escalations_fired"] == [0.5, 0.75, 1.0]
    assert sla["penalty_eur"] == 300.0  # 2 started hours late x 150


def test_frozen_ticket_does_not_escalate(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, alarm_type="fire")
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "qualified")
    desk.move(ref, "in_progress")
    desk.clock.advance(minutes=90)
    desk.move(ref, "waiting_client")
    desk.clock.advance(hours=20)
    desk.timers()
    assert desk.client.get(f"/api/v1/tickets/{ref}").json()["escalation_level"] == 1


def test_recurrence_before_closure_reopens_and_after_closure_opens_a_linked_ticket(
    desk: Desk,
) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "qualified")
    desk.move(ref, "in_progress")
    desk.alarm(Transition.CLEARED)
    desk.restore(ref)
    desk.alarm(Transition.RAISED)  # before closure: same ticket, back in progress
    tickets = desk.tickets()
    assert len(tickets) == 1 and tickets[0]["state"] == "in_progress"
    assert tickets[0]["recurrences"] == 1
    desk.alarm(Transition.CLEARED)
    desk.restore(ref)
    desk.move(ref, "closed")
    desk.alarm(Transition.RAISED)  # after closure: a new ticket
    tickets = desk.tickets()
    assert [t["state"] for t in tickets] == ["opened", "closed"]
    opened = desk.client.get(f"/api/v1/tickets/{tickets[0]['ref']}").json()
    assert f"follows closed ticket {ref}" in opened["operations"][0]["detail"]
