"""Client declarations (SAV), restoration notices, interventions and progress updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from collector.alarms.models import Alarm
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.tickets.models import TicketAttachment
from protocol import Transition
from tests.collector.conftest import Desk, declaration


def contact_alarm(desk: Desk, site: str, alarm_type: str, transition: Transition) -> None:
    desk.alarm(transition, alarm_type, site=site, equipment="contacts", point=alarm_type)


def test_a_client_declares_an_individual_incident_on_working_hours(desk: Desk) -> None:
    response = desk.client.post("/api/v1/tickets", json=declaration(), headers=desk.alpha)
    assert response.status_code == 201, response.text
    ticket = response.json()
    assert (ticket["source"], ticket["kind"], ticket["site_id"]) == ("client", "sav", "NRO-LYO-01")
    assert (ticket["client_ref"], ticket["ref"].startswith("TKT-")) == ("ALPHA-4411", True)
    assert ticket["sla"]["contract_id"] == "sav-working-hours"
    assert ticket["declaration"]["technical_contact"]["email"] == "noc@alpha.example"
    with desk.sessions() as session:
        assert session.scalars(select(TicketAttachment.content)).one() == b"ping timeout"


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"hosting_ref": "HEB00003"}, "not one of your services"),
        ({"hosting_ref": "HEB1"}, "hosting_ref"),
        (
            {"technical_contact": {"name": "x", "email": "nope", "phone": "1"}},
            "technical_contact.email",
        ),
        ({"attachments": [{"filename": "a", "content_base64": "%%%"}]}, "not valid base64"),
    ],
)
def test_bad_declarations_are_refused_with_the_reason(
    desk: Desk, overrides: dict[str, Any], where: str
) -> None:
    response = desk.client.post(
        "/api/v1/tickets", json=declaration(**overrides), headers=desk.alpha
    )
    assert response.status_code == 422
    assert where in response.json()["detail"]


def test_restoring_an_alarm_ticket_needs_its_alarm_cleared_and_a_notice(desk: Desk) -> None:
    desk.alarm(
        Transition.RAISED, "hvac_fault", site="NRO-LYO-01", equipment="contacts", point="hvac_fault"
    )
    ref = desk.client.get("/api/v1/tickets", headers=desk.noc).json()["items"][0]["ref"]
    for to in ("qualified", "in_progress"):
        desk.client.post(f"/api/v1/tickets/{ref}/transition", json={"to": to}, headers=desk.noc)
    notice = {
        "link_ref": "LNK-9",
        "corrective_operation": "HVAC reset",
        "occurred_at": "2026-01-05T09:00:00Z",
        "description": "HVAC unit, NRO room 1",
        "causes": "compressor fault",
    }
    refused = desk.client.post(f"/api/v1/tickets/{ref}/restore", json=notice, headers=desk.noc)
    assert refused.status_code == 409 and "still active" in refused.json()["detail"]
    bypass = desk.client.post(
        f"/api/v1/tickets/{ref}/transition", json={"to": "restored"}, headers=desk.noc
    )
    assert bypass.status_code == 403
    desk.clock.advance(minutes=20)
    desk.alarm(
        Transition.CLEARED,
        "hvac_fault",
        site="NRO-LYO-01",
        equipment="contacts",
        point="hvac_fault",
    )
    restored = desk.client.post(
        f"/api/v1/tickets/{ref}/restore", json=notice, headers=desk.noc
    ).json()
    assert restored["state"] == "restored"
    # Re-supervision filled the return to nominal from the alarm's clear.
    assert restored["restoration_notice"]["return_to_nominal_at"] == "2026-01-05T09:20:00+00:00"
    confirmed = desk.client.post(
        f"/api/v1/tickets/{ref}/transition", json={"to": "closed"}, headers=desk.alpha
    )
    assert confirmed.json()["state"] == "closed"


def test_an_on_site_dispatch_lets_the_technician_in_without_an_intrusion(desk: Desk) -> None:
    desk.alarm(
        Transition.RAISED,
        "hvac_fault",
        site="PM-LYO-0101",
        equipment="contacts",
        point="hvac_fault",
    )
    ref = desk.client.get("/api/v1/tickets", headers=desk.noc).json()["items"][0]["ref"]
    slot = {
        "slot_start": desk.clock.now().isoformat(),
        "slot_end": (desk.clock.now() + timedelta(hours=2)).isoformat(),
    }
    missing = desk.client.post(
        f"/api/v1/tickets/{ref}/interventions", json={"kind": "onsite_dispatch"}, headers=desk.noc
    )
    assert missing.status_code == 422 and "time slot" in missing.json()["detail"]
    ok = desk.client.post(
        f"/api/v1/tickets/{ref}/interventions",
        json={"kind": "onsite_dispatch", "detail": "tech T. Martin", **slot},
        headers=desk.noc,
    )
    assert ok.status_code == 201
    desk.clock.advance(minutes=30)
    desk.alarm(
        Transition.RAISED, "door_open", site="PM-LYO-0101", equipment="contacts", point="door_open"
    )
    titles = [
        t["title"] for t in desk.client.get("/api/v1/tickets", headers=desk.noc).json()["items"]
    ]
    assert not any(t.startswith("door_open") for t in titles)
    with desk.sessions() as session:
        assert (
            session.scalars(select(Alarm).where(Alarm.alarm_type == "door_open"))
            .one()
            .in_maintenance
        )
    desk.alarm(
        Transition.CLEARED, "door_open", site="PM-LYO-0101", equipment="contacts", point="door_open"
    )
    desk.clock.advance(hours=3)
    desk.alarm(
        Transition.RAISED, "door_open", site="PM-LYO-0101", equipment="contacts", point="door_open"
    )  # after the slot: an intrusion
    titles = [
        t["title"] for t in desk.client.get("/api/v1/tickets", headers=desk.noc).json()["items"]
    ]
    assert any(t.startswith("door_open") for t in titles)


def test_internal_updates_stay_internal_and_client_messages_reach_the_noc(desk: Desk) -> None:
    ref = desk.client.post("/api/v1/tickets", json=declaration(), headers=desk.alpha).json()["ref"]
    desk.client.post(
        f"/api/v1/tickets/{ref}/updates",
        json={"message": "field team on its way"},
        headers=desk.noc,
    )
    desk.client.post(
        f"/api/v1/tickets/{ref}/updates",
        json={"message": "suspect the OLT card", "visible_to_client": False},
        headers=desk.noc,
    )
    desk.client.post(
        f"/api/v1/tickets/{ref}/updates",
        json={"message": "still down at 10:00"},
        headers=desk.alpha,
    )
    seen_by_client = [
        o["detail"]
        for o in desk.client.get(f"/api/v1/tickets/{ref}", headers=desk.alpha).json()["operations"]
    ]
    seen_by_noc = [
        o["detail"]
        for o in desk.client.get(f"/api/v1/tickets/{ref}", headers=desk.noc).json()["operations"]
    ]
    assert "suspect the OLT card" not in seen_by_client
    assert {"field team on its way", "still down at 10:00"} <= set(seen_by_client)
    assert {"field team on its way", "suspect the OLT card", "still down at 10:00"} <= set(
        seen_by_noc
    )


def test_a_dispatched_technician_records_its_own_work_and_nothing_else(desk: Desk) -> None:
    with desk.sessions() as session:
        _, token = create_user(session, name="j.martin", role=Role.TECHNICIAN, now=desk.clock.now())
        session.commit()
    tech = {"Authorization": f"Bearer {token}"}
    ref = desk.client.post("/api/v1/tickets", json=declaration(), headers=desk.noc).json()["ref"]
    slot = {
        "slot_start": desk.clock.now().isoformat(),
        "slot_end": (desk.clock.now() + timedelta(hours=2)).isoformat(),
    }
    fiber = {"kind": "fiber_maintainer", "detail": "cable cut in the street"}
    url = f"/api/v1/tickets/{ref}/interventions"
    before = desk.client.post(url, json=fiber, headers=tech)
    assert before.status_code == 403, before.text
    assert before.json()["detail"] == (
        f"ticket {ref}: j.martin is not dispatched on it (no intervention names this technician)"
    )
    dispatch = {"kind": "onsite_dispatch", "technician": "j.martin", **slot}
    assert desk.client.post(url, json=dispatch, headers=desk.noc).status_code == 201
    refused = [
        desk.client.post(url, json={**fiber, "technician": "a.colleague"}, headers=tech),
        desk.client.post(url, json={**dispatch, "detail": "one more slot"}, headers=tech),
    ]
    assert [r.json()["detail"] for r in refused] == [
        f"ticket {ref}: a technician records its own interventions, not a.colleague's",
        f"ticket {ref}: on-site dispatches are the NOC's",
    ]
    assert desk.client.post(url, json=fiber, headers=tech).status_code == 201
    update = {"message": "splice redone", "visible_to_client": True}
    posted = desk.client.post(f"/api/v1/tickets/{ref}/updates", json=update, headers=tech)
    assert posted.status_code == 201, posted.text
    log = [(op["actor"], op["detail"]) for op in desk.ticket(ref)["operations"]][1:]
    assert log == [
        (
            "noc",
            "on-site dispatch 2026-01-05 09:00-11:00 UTC (technician j.martin): ",
        ),
        ("j.martin", "fiber maintainer called (technician j.martin): cable cut in the street"),
        ("j.martin", "splice redone"),
    ]
