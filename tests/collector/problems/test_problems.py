"""Problem records: a third occurrence of the same fault proposes a problem with its incidents;
the NOC confirms or rejects it, links tickets, closes it with the root cause and the permanent
fix; the monthly report counts them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from collector.tickets.models import Ticket
from protocol import Transition
from tests.collector.conftest import Desk

SITE = "NRO-LYO-01"  # op-alpha's


def _occurrence(desk: Desk, *, days_later: float = 2) -> None:
    """The HVAC of the NRO fails, and is repaired (its ticket cancelled as handled)."""
    desk.alarm(Transition.RAISED, "hvac_fault", site=SITE, equipment="hvac-1", point="relay")
    desk.alarm(Transition.CLEARED, "hvac_fault", site=SITE, equipment="hvac-1", point="relay")
    desk.clock.advance(hours=24 * days_later)


def _problems(desk: Desk, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = desk.client.get("/api/v1/problems", params=params).json()
    return found


def _close_tickets(desk: Desk) -> None:
    for ticket in desk.tickets():
        if ticket["state"] == "opened":
            desk.move(ticket["ref"], "cancelled", detail="repaired on site")


def test_a_third_occurrence_proposes_a_problem_with_its_incidents(desk: Desk) -> None:
    for _ in range(2):
        _occurrence(desk)
        _close_tickets(desk)
    assert _problems(desk) == []  # twice is not yet a pattern
    _occurrence(desk)
    (problem,) = _problems(desk)
    assert (problem["state"], problem["site_id"], problem["equipment_id"]) == (
        "proposed",
        SITE,
        "hvac-1",
    )
    assert problem["alarm_type"] == "hvac_fault"
    assert "3 occurrences of hvac_fault on hvac-1" in problem["reason"]
    assert len(problem["tickets"]) == 3  # every incident of the pattern, handled or not
    # A fourth occurrence joins the open problem instead of proposing another.
    _close_tickets(desk)
    _occurrence(desk)
    (again,) = _problems(desk)
    assert again["ref"] == problem["ref"] and len(again["tickets"]) == 4


def test_occurrences_outside_the_window_do_not_make_a_problem(desk: Desk) -> None:
    for _ in range(3):
        _occurrence(desk, days_later=20)  # 3 in 40 days: never 3 within 30
        _close_tickets(desk)
    assert _problems(desk) == []


def test_the_noc_confirms_links_and_closes_with_root_cause_and_fix(desk: Desk) -> None:
    for _ in range(3):
        _occurrence(desk)
    ref = _problems(desk)[0]["ref"]
    desk.alarm(Transition.RAISED, "temp_high", site=SITE, equipment="env-1", point="temperature")
    other = next(t["ref"] for t in desk.tickets() if "temp_high" in t["title"])
    early = desk.client.post(f"/api/v1/problems/{ref}/decision", json={"to": "closed"})
    assert early.status_code == 409 and "cannot go from proposed to closed" in early.text
    confirmed = desk.client.post(f"/api/v1/problems/{ref}/decision", json={"to": "confirmed"})
    assert confirmed.json()["state"] == "confirmed" and confirmed.json()["decided_by"] == "noc"
    linked = desk.client.post(f"/api/v1/problems/{ref}/tickets", json={"ticket_ref": other})
    assert other in linked.json()["tickets"]
    bare = desk.client.post(f"/api/v1/problems/{ref}/decision", json={"to": "closed"})
    assert bare.status_code == 409 and "root cause and the permanent fix" in bare.text
    closed = desk.client.post(
        f"/api/v1/problems/{ref}/decision",
        json={
            "to": "closed",
            "root_cause": "compressor relay worn out",
            "permanent_fix": "HVAC unit replaced, maintenance contract amended",
        },
    ).json()
    assert (closed["state"], closed["root_cause"]) == ("closed", "compressor relay worn out")
    assert closed["closed_at"] is not None
    report = desk.client.get(
        "/api/v1/reports/monthly", params={"month": "2026-01", "client_id": "op-alpha"}
    ).json()
    assert (report["problems_opened"], report["problems_closed"]) == (1, 1)


def test_a_rejection_needs_a_reason_and_clients_only_read_their_sites(desk: Desk) -> None:
    for _ in range(3):
        _occurrence(desk)
    ref = _problems(desk)[0]["ref"]
    assert (
        desk.client.post(f"/api/v1/problems/{ref}/decision", json={"to": "rejected"}).status_code
        == 409
    )
    rejected = desk.client.post(
        f"/api/v1/problems/{ref}/decision",
        json={"to": "rejected", "reason": "three unrelated faults"},
    ).json()
    assert rejected["state"] == "rejected" and rejected["reason"] == "three unrelated faults"
    assert [p["ref"] for p in desk.client.get("/api/v1/problems", headers=desk.alpha).json()] == [
        ref
    ]
    assert (
        desk.client.post(
            f"/api/v1/problems/{ref}/decision", json={"to": "confirmed"}, headers=desk.alpha
        ).status_code
        == 403
    )
    assert desk.client.get("/api/v1/problems/PRB-2026-999999").status_code == 404


def test_a_problem_links_only_its_own_equipments_tickets_whatever_their_characters(
    desk: Desk,
) -> None:
    # "_" is an identifier character; in a LIKE pattern it would match the "-" of hvac-1.
    desk.alarm(Transition.RAISED, "hvac_fault", site=SITE, equipment="hvac-1", point="relay")
    for _ in range(3):
        desk.alarm(Transition.RAISED, "hvac_fault", site=SITE, equipment="hvac_1", point="relay")
        desk.alarm(Transition.CLEARED, "hvac_fault", site=SITE, equipment="hvac_1", point="relay")
        desk.clock.advance(hours=48)
        for ref, identity in _identities(desk).items():
            if identity.startswith(f"{SITE}/hvac_1/") and desk.ticket(ref)["state"] == "opened":
                desk.move(ref, "cancelled", detail="repaired on site")
    (problem,) = _problems(desk)
    assert problem["equipment_id"] == "hvac_1"
    linked = set(problem["tickets"])
    other = {ref for ref, identity in _identities(desk).items() if "/hvac-1/" in identity}
    assert len(linked) == 3 and len(other) == 1 and not linked & other


def _identities(desk: Desk) -> dict[str, str]:
    with desk.sessions() as session:
        rows = session.execute(select(Ticket.ref, Ticket.alarm_identity))
        return {ref: identity or "" for ref, identity in rows}
