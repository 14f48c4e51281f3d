"""What contracts decide: criticality profiles, re-supervision, penalties and their exclusion."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from collector.inventory.models import Client
from collector.sla.contracts import load_contracts
from collector.tickets.models import Ticket
from protocol import Transition
from tests.collector.conftest import Desk, declaration

FOUR_LEVELS = ["P1", "P2", "P3", "P4"]
PREMIUM = {"contract_id": "premium-4-levels"}
SITE, CONTROL = "PM-LYO-0101", "PM-LYO-0102"


THREE_LEVELS = {"critical": "critical", "major": "major", "minor": "minor"}


def actions(desk: Desk, ref: str) -> list[str]:
    return [op["action"] for op in desk.ticket(ref)["operations"]]


def test_a_four_level_contract_qualifies_with_its_own_levels(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    assert desk.ticket(ref)["criticality"] == "major"
    moved = desk.client.post(
        f"/api/v1/tickets/{ref}/contract", json={"contract_id": "premium-4-levels"}
    )
    assert moved.status_code == 200, moved.text
    ticket = moved.json()
    # A major ticket keeps its meaning on the four-level scale: P2, GTR 4 h on that contract.
    assert (ticket["criticality"], ticket["sla"]["gtr_min"]) == ("P2", 240.0)
    assert ticket["sla"]["criticality_levels"] == FOUR_LEVELS
    refused = desk.move(ref, "qualified", criticality="critical")
    assert refused.status_code == 422
    assert "P1, P2, P3, P4" in refused.json()["detail"]
    assert desk.ticket(ref)["state"] == "opened"  # nothing changed
    qualified = desk.move(ref, "qualified", criticality="P1")
    assert qualified.status_code == 200, qualified.text
    assert (qualified.json()["criticality"], qualified.json()["sla"]["gtr_min"]) == ("P1", 120.0)


def test_a_contract_change_keeps_frozen_time_and_is_logged(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "qualified", criticality="major")
    desk.move(ref, "in_progress")
    desk.clock.advance(minutes=30)
    desk.move(ref, "waiting_client")
    desk.clock.advance(hours=10)
    desk.move(ref, "in_progress")
    before = desk.ticket(ref)["sla"]
    desk.client.post(f"/api/v1/tickets/{ref}/contract", json=PREMIUM)
    after = desk.ticket(ref)
    assert (after["sla"]["elapsed_min"], after["sla"]["frozen_min"]) == (30.0, 600.0)
    assert (before["elapsed_min"], before["frozen_min"]) == (30.0, 600.0)
    contract_op = [op for op in after["operations"] if op["action"] == "contract"][-1]
    assert (contract_op["before"], contract_op["after"]) == ("curative-24x7", "premium-4-levels")
    unknown = desk.client.post(f"/api/v1/tickets/{ref}/contract", json={"contract_id": "gold"})
    assert unknown.status_code == 422
    assert "unknown contract 'gold'" in unknown.json()["detail"]


def test_a_client_on_a_four_level_contract_declares_with_its_levels(desk: Desk) -> None:
    with desk.sessions() as session:
        client = session.get(Client, "op-alpha")
        assert client is not None
        client.sav_contract = "premium-4-levels"
        session.commit()
    refused = desk.client.post("/api/v1/tickets", json=declaration(), headers=desk.alpha)
    assert refused.status_code == 422
    assert "premium-4-levels" in refused.json()["detail"]
    default = desk.client.post(
        "/api/v1/tickets", json=declaration(criticality=""), headers=desk.alpha
    ).json()
    assert (default["criticality"], default["contract_id"]) == ("P2", "premium-4-levels")
    urgent = desk.client.post(
        "/api/v1/tickets", json=declaration(criticality="P1"), headers=desk.alpha
    ).json()
    assert (urgent["sla"]["gtr_min"], urgent["sla"]["calendar"]) == (120.0, "24x7")


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        ({"criticality_profile": "five-level"}, "unknown criticality_profile 'five-level'"),
        ({"gtr_min": {"critical": 60, "major": 120}}, "gtr_min must give exactly the levels"),
    ],
)
def test_a_contract_file_with_levels_that_do_not_match_is_refused(
    tmp_path: Path, contract: dict[str, object], message: str
) -> None:
    good = {
        "name": "x",
        "calendar": "24x7",
        "gtr_min": {"critical": 60, "major": 120, "minor": 240},
        "escalation_fractions": [1.0],
        "penalty": {"per_started_hour_late_eur": 1, "cap_eur": 2},
    }
    path = tmp_path / "contracts.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "criticality_profiles": {
                    "three-level": {
                        "levels": {"critical": "critical", "major": "major", "minor": "minor"}
                    }
                },
                "contracts": {"bad-one": {**good, **contract}},
            }
        )
    )
    with pytest.raises(ValueError, match="bad-one") as err:
        load_contracts(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_after_a_fire_the_noc_confirms_the_return_to_nominal(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, "fire", equipment="fire-panel", point="relay")
    ref = desk.tickets()[0]["ref"]
    assert desk.ticket(ref)["resupervision"] == "manual"
    desk.move(ref, "qualified", criticality="critical")
    desk.move(ref, "in_progress")
    early = desk.client.post(f"/api/v1/tickets/{ref}/resupervision", json={})
    assert early.status_code == 409
    assert "still active" in early.json()["detail"]
    desk.clock.advance(minutes=40)
    desk.alarm(Transition.CLEARED, "fire", equipment="fire-panel", point="relay")
    ticket = desk.ticket(ref)
    assert ticket["return_to_nominal_at"] is None  # not by itself: the NOC confirms
    assert actions(desk, ref)[-1] == "awaiting_resupervision"
    refused = desk.restore(ref)
    assert refused.status_code == 409
    assert f"/api/v1/tickets/{ref}/resupervision" in refused.json()["detail"]
    desk.clock.advance(minutes=20)
    confirmed = desk.client.post(
        f"/api/v1/tickets/{ref}/resupervision", json={"detail": "panel reset, site checked"}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["return_to_nominal_at"].startswith("2026-01-05T10:00")
    again = desk.client.post(f"/api/v1/tickets/{ref}/resupervision", json={})
    assert again.status_code == 409
    assert desk.restore(ref).status_code == 200


def test_a_manual_contract_makes_any_alarm_ticket_wait_for_the_noc(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)  # a door: automatic on the default contract
    ref = desk.tickets()[0]["ref"]
    assert desk.ticket(ref)["resupervision"] == "automatic"
    desk.client.post(f"/api/v1/tickets/{ref}/contract", json=PREMIUM)
    assert desk.ticket(ref)["resupervision"] == "manual"
    desk.move(ref, "qualified", criticality="P2")
    desk.move(ref, "in_progress")
    desk.alarm(Transition.CLEARED)
    assert desk.ticket(ref)["return_to_nominal_at"] is None
    assert desk.restore(ref).status_code == 409


def test_the_door_ticket_returns_to_nominal_by_itself(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    desk.move(ref, "qualified", criticality="major")
    desk.move(ref, "in_progress")
    desk.clock.advance(minutes=5)
    desk.alarm(Transition.CLEARED)
    assert desk.ticket(ref)["return_to_nominal_at"].startswith("2026-01-05T09:05")
    assert desk.restore(ref).status_code == 200


@pytest.mark.parametrize("cause_first", [True, False], ids=["mains-first", "battery-first"])
def test_mains_lost_becomes_critical_when_the_battery_runs_low(
    desk: Desk, cause_first: bool
) -> None:
    order = ["mains_lost", "battery_low"] if cause_first else ["battery_low", "mains_lost"]
    for alarm_type in order:
        desk.alarm(Transition.RAISED, alarm_type, site="S2", equipment="power", point=alarm_type)
        desk.clock.advance(seconds=30)
    open_tickets = [t for t in desk.tickets() if t["state"] != "cancelled"]
    assert [(t["title"].split()[0], t["criticality"]) for t in open_tickets] == [
        ("mains_lost", "critical")
    ]
    raised = [
        op
        for op in desk.ticket(open_tickets[0]["ref"])["operations"]
        if op["action"] == "criticality"
    ]
    assert raised and raised[-1]["after"] == "critical"


def test_a_refused_urgent_intervention_is_recorded_and_excluded_from_penalties(
    desk: Desk,
) -> None:
    # Major on curative 24/7: GTR 8 h, 150 EUR per started hour late; the same fault at another
    # site, where nobody refused anything, is the control.
    desk.alarm(Transition.RAISED, site="PM-LYO-0101")
    desk.alarm(Transition.RAISED, site="PM-LYO-0102")
    refs = {t["site_id"]: t["ref"] for t in desk.tickets()}
    desk.clock.advance(hours=8, minutes=30)
    assert desk.ticket(refs[SITE])["sla"]["penalty_eur"] == 150.0
    window = desk.client.post(
        "/api/v1/maintenance",
        json={
            "site_id": SITE,
            "starts_at": "2026-01-05T18:00:00Z",
            "ends_at": "2026-01-05T20:00:00Z",
            "category": "urgent",
            "hours": "HNO",
            "client_agreement": "refused",
            "description": "replace the door contact tonight",
        },
    )
    assert window.status_code == 201, window.text
    desk.clock.advance(hours=12)
    desk.timers()
    excluded = desk.ticket(refs[SITE])
    assert excluded["sla"]["penalty_eur"] == 150.0  # lateness after the refusal is not counted
    assert excluded["sla"]["penalty_excluded_from"].startswith("2026-01-05T17:30")
    assert "refused urgent corrective works" in excluded["penalty_excluded_reason"]
    assert "penalty_excluded" in actions(desk, refs[SITE])
    assert excluded["sla"]["planned_works_min"] == 0.0  # refused works do not happen
    # 12 h 30 late: 13 started hours.
    assert desk.ticket(refs[CONTROL])["sla"]["penalty_eur"] == 1950.0
    with desk.sessions() as session:
        stored = session.scalars(select(Ticket).where(Ticket.ref == refs[SITE])).one()
        assert stored.penalty_excluded_from is not None
