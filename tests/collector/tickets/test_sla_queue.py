"""The NOC's SLA-first queue: tickets sorted by the time left before their GTR deadline (the
most overdue first, paused clocks after with why they are paused, restored ones next), and
filtered by "breaching within N minutes", region, client, site, criticality and state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from protocol import Severity, Transition
from tests.collector.conftest import Desk


def queue(desk: Desk, **params: Any) -> list[dict[str, Any]]:
    response = desk.client.get("/api/v1/tickets", params={"open_only": True, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _open_four(desk: Desk) -> dict[str, str]:
    """A major door ticket, a critical fire ticket, one waiting for the client, one restored."""
    desk.alarm(Transition.RAISED, site="NRO-LYO-01")
    desk.clock.advance(minutes=1)
    desk.alarm(
        Transition.RAISED, "fire", site="PM-LYO-0101", equipment="fire-1",
        severity=Severity.CRITICAL,
    )  # fmt: skip
    desk.clock.advance(minutes=1)
    desk.alarm(Transition.RAISED, site="PM-LYO-0102")
    desk.clock.advance(minutes=1)
    desk.alarm(Transition.RAISED, "mains_lost", site="PM-LYO-0102", equipment="power")
    by_site = {(t["site_id"], t["title"].split()[0]): t["ref"] for t in desk.tickets()}
    refs = {
        "door": by_site[("NRO-LYO-01", "door_open")],
        "fire": by_site[("PM-LYO-0101", "fire")],
        "waiting": by_site[("PM-LYO-0102", "door_open")],
        "restored": by_site[("PM-LYO-0102", "mains_lost")],
    }
    assert desk.move(refs["waiting"], "qualified").status_code == 200
    assert desk.move(refs["waiting"], "in_progress").status_code == 200
    moved = desk.move(refs["waiting"], "waiting_client", detail="badge d'accès ?")
    assert moved.status_code == 200, moved.text
    assert desk.move(refs["restored"], "qualified").status_code == 200
    assert desk.move(refs["restored"], "in_progress").status_code == 200
    desk.alarm(Transition.CLEARED, "mains_lost", site="PM-LYO-0102", equipment="power")
    restored = desk.restore(refs["restored"])
    assert restored.status_code == 200, restored.text
    return refs


def test_the_queue_puts_what_breaches_next_on_top(desk: Desk) -> None:
    refs = _open_four(desk)
    items = queue(desk, sort="breach")
    running = [t for t in items if t["sla"]["clock"] == "running"]
    deadlines = [datetime.fromisoformat(t["sla"]["deadline"]) for t in running]
    assert deadlines == sorted(deadlines)
    assert {t["ref"] for t in running} == {refs["door"], refs["fire"]}
    assert [t["ref"] for t in items[2:]] == [refs["waiting"], refs["restored"]]
    waiting = items[2]["sla"]
    assert waiting["clock"] == "frozen" and waiting["deadline"] is None
    assert waiting["clock_reason"]  # why it is paused, shown in the queue
    assert items[0]["sla"]["clock_reason"] is None
    # Paged, the order holds across pages.
    pages = [queue(desk, sort="breach", offset=i, limit=1)[0]["ref"] for i in range(4)]
    assert pages == [t["ref"] for t in items]


def test_breaching_within_keeps_running_clocks_due_by_then_breached_ones_included(
    desk: Desk,
) -> None:
    refs = _open_four(desk)
    first = queue(desk, sort="breach")[0]
    due = datetime.fromisoformat(first["sla"]["deadline"])
    left_min = (due - desk.clock.now()).total_seconds() / 60
    assert queue(desk, breaching_within_min=int(left_min) - 1) == []
    soon = queue(desk, breaching_within_min=int(left_min) + 1, sort="breach")
    assert [t["ref"] for t in soon] == [first["ref"]]
    desk.clock.advance(minutes=int(left_min) + 2)  # now past its deadline
    breached = queue(desk, breaching_within_min=0)
    assert [t["ref"] for t in breached] == [first["ref"]]
    assert breached[0]["sla"]["breached"]
    # Neither the paused nor the restored ticket is ever "breaching within".
    everything = {t["ref"] for t in queue(desk, breaching_within_min=525_600)}
    assert everything == {refs["door"], refs["fire"]}


def test_the_queue_filters_by_region_criticality_client_and_site(desk: Desk) -> None:
    created = desk.client.post(
        "/api/v1/sites",
        json={"site_id": "NRO-RNS-01", "kind": "nro", "name": "NRO Rennes 1", "region": "Bretagne"},
    )
    assert created.status_code == 201, created.text
    refs = _open_four(desk)
    desk.alarm(Transition.RAISED, site="NRO-RNS-01")
    in_brittany = queue(desk, region="Bretagne", sort="breach")
    assert [t["site_id"] for t in in_brittany] == ["NRO-RNS-01"]
    assert queue(desk, region="Nowhere") == []
    critical = queue(desk, criticality="critical", sort="breach")
    assert [t["ref"] for t in critical] == [refs["fire"]]
    assert {t["ref"] for t in queue(desk, site_id="PM-LYO-0102", sort="breach")} == {
        refs["waiting"],
        refs["restored"],
    }
    # A client sees its own queue only, in the same order.
    alpha = desk.client.get(
        "/api/v1/tickets", params={"open_only": True, "sort": "breach"}, headers=desk.alpha
    ).json()["items"]
    assert {t["site_id"] for t in alpha} <= {"NRO-LYO-01", "PM-LYO-0101"}


def test_a_bad_horizon_is_refused_naming_it(desk: Desk) -> None:
    for bad in ("-1", "525601", "soon"):
        response = desk.client.get("/api/v1/tickets", params={"breaching_within_min": bad})
        assert response.status_code == 422
        assert response.json()["detail"].startswith("query.breaching_within_min")
