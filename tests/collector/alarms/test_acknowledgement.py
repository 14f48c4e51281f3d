"""Alarm acknowledgement through the API, on both databases: who, when and a note, seen by every
operator, in the alarm's history and on the live feed; withdrawn with a reason; an acknowledged
alarm raised again notifies nobody while its ticket and SLA clock go on as before."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from collector.feed import routes as feed_routes
from collector.notifications.models import Notification
from collector.notifications.settings import NotificationSettings
from protocol import Severity, Transition
from tests.collector.conftest import Desk

ALPHA_SITE, BETA_SITE = "PM-LYO-0101", "PM-LYO-0102"


def _alarm(desk: Desk, **where: Any) -> dict[str, Any]:
    """Raise a door alarm (at ``S1`` unless told) and return it as the API shows it."""
    desk.alarm(Transition.RAISED, **where)
    site = where.get("site", "S1")
    [alarm] = desk.client.get(f"/api/v1/alarms?site_id={site}&state=open").json()["items"]
    return dict(alarm)


def _ack(desk: Desk, alarm_id: int, **body: Any) -> Any:
    return desk.client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json=body or None)


def _unack(desk: Desk, alarm_id: int, body: Any) -> Any:
    return desk.client.post(f"/api/v1/alarms/{alarm_id}/unacknowledge", json=body)


def _history(desk: Desk, alarm_id: int) -> list[dict[str, Any]]:
    response = desk.client.get(f"/api/v1/alarms/{alarm_id}/history")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_an_operator_acknowledges_with_a_note_and_every_operator_sees_who_and_when(
    desk: Desk,
) -> None:
    alarm = _alarm(desk)
    assert (alarm["acknowledged_by"], alarm["acknowledged_at"], alarm["ack_note"]) == (
        None,
        None,
        None,
    )
    desk.clock.advance(minutes=3)
    response = _ack(desk, alarm["id"], note="technicien prévenu, sur site à 11 h")
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["acknowledged_by"] == "noc"
    assert shown["acknowledged_at"] == "2026-01-05T09:03:00Z"
    assert shown["ack_note"] == "technicien prévenu, sur site à 11 h"
    assert shown["state"] == "active"  # seen is not cleared
    [listed] = desk.client.get("/api/v1/alarms?site_id=S1").json()["items"]
    assert listed == shown
    last = _history(desk, alarm["id"])[-1]
    assert (last["change"], last["actor"], last["note"], last["at"]) == (
        "acknowledged",
        "noc",
        "technicien prévenu, sur site à 11 h",
        "2026-01-05T09:03:00Z",
    )


def test_acknowledging_needs_no_body(desk: Desk) -> None:
    alarm = _alarm(desk)
    response = desk.client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge")
    assert response.status_code == 200, response.text
    assert (response.json()["acknowledged_by"], response.json()["ack_note"]) == ("noc", None)


def test_acknowledging_twice_is_a_409_naming_the_alarm_and_who_acknowledged_it_when(
    desk: Desk,
) -> None:
    alarm = _alarm(desk)
    assert _ack(desk, alarm["id"]).status_code == 200
    desk.clock.advance(minutes=10)
    again = _ack(desk, alarm["id"], note="moi aussi")
    assert again.status_code == 409, again.text
    message = again.json()["detail"]
    assert message == (
        f"alarme {alarm['id']} (door_open, S1 door-main/contact) déjà acquittée par noc le "
        "05/01/2026 10:00 (heure de Paris) / "
        f"alarm {alarm['id']} (door_open, S1 door-main/contact) already acknowledged by noc "
        "at 2026-01-05 09:00 UTC"
    )
    shown = desk.client.get("/api/v1/alarms?site_id=S1").json()["items"][0]
    assert (shown["acknowledged_at"], shown["ack_note"]) == ("2026-01-05T09:00:00Z", None)


def test_withdrawing_an_acknowledgement_takes_a_reason_kept_in_the_history(desk: Desk) -> None:
    alarm = _alarm(desk)
    _ack(desk, alarm["id"], note="vu")
    desk.clock.advance(minutes=5)
    response = _unack(desk, alarm["id"], {"reason": "  mauvaise alarme acquittée  "})
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["acknowledged_by"], shown["acknowledged_at"], shown["ack_note"]) == (
        None,
        None,
        None,
    )
    changes = [(h["change"], h["actor"], h["note"]) for h in _history(desk, alarm["id"])]
    assert changes == [
        ("raised", None, None),
        ("acknowledged", "noc", "vu"),
        ("unacknowledged", "noc", "mauvaise alarme acquittée"),
    ]
    assert _ack(desk, alarm["id"]).status_code == 200  # and it can be acknowledged again


def test_withdrawing_an_acknowledgement_nobody_made_is_a_409(desk: Desk) -> None:
    alarm = _alarm(desk)
    response = _unack(desk, alarm["id"], {"reason": "erreur"})
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        f"alarme {alarm['id']} (door_open, S1 door-main/contact) n'est pas acquittée / "
        f"alarm {alarm['id']} (door_open, S1 door-main/contact) is not acknowledged"
    )


@pytest.mark.parametrize(
    ("method", "action", "body"),
    [
        ("POST", "acknowledge", None),
        ("POST", "unacknowledge", {"reason": "x"}),
        ("GET", "history", None),
    ],
)
def test_an_unknown_alarm_is_a_404(desk: Desk, method: str, action: str, body: Any) -> None:
    response = desk.client.request(method, f"/api/v1/alarms/4242/{action}", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == "alarme 4242 introuvable / alarm 4242 not found"


def test_a_client_reads_the_acknowledgement_of_its_sites_alarms_but_may_not_make_one(
    desk: Desk,
) -> None:
    own = _alarm(desk, site=ALPHA_SITE)
    foreign = _alarm(desk, site=BETA_SITE)
    _ack(desk, own["id"], note="on s'en occupe")
    [seen] = desk.client.get("/api/v1/alarms?acknowledged=true", headers=desk.alpha).json()["items"]
    assert (seen["id"], seen["acknowledged_by"]) == (own["id"], "noc")
    refused = desk.client.post(f"/api/v1/alarms/{foreign['id']}/acknowledge", headers=desk.alpha)
    assert refused.status_code == 403
    history = desk.client.get(f"/api/v1/alarms/{foreign['id']}/history", headers=desk.alpha)
    assert history.status_code == 404  # another client's alarm is not said to exist


@pytest.mark.parametrize(
    ("action", "body", "where"),
    [
        ("unacknowledge", None, "body"),
        ("unacknowledge", {}, "body.reason"),
        ("unacknowledge", {"reason": ""}, "body.reason"),
        ("unacknowledge", {"reason": "   "}, "body.reason"),
        ("unacknowledge", {"reason": "x", "by": "someone"}, "body.by"),
        ("unacknowledge", {"reason": "a\x00b"}, "body.reason"),
        ("acknowledge", {"note": "a\x00b"}, "body.note"),
        ("acknowledge", {"note": "x" * 2001}, "body.note"),
        ("acknowledge", {"note": 5}, "body.note"),
        ("acknowledge", {"acknowledged_by": "someone else"}, "body.acknowledged_by"),
    ],
)
def test_a_bad_body_is_a_422_saying_where(desk: Desk, action: str, body: Any, where: str) -> None:
    alarm = _alarm(desk)
    _ack(desk, alarm["id"])  # so a good body would go through on either action
    response = desk.client.post(f"/api/v1/alarms/{alarm['id']}/{action}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["where"] == where


def test_the_list_filters_on_acknowledged(desk: Desk) -> None:
    seen = _alarm(desk, site="S1")
    unseen = _alarm(desk, site="S2")
    _ack(desk, seen["id"])

    def ids(query: str) -> list[int]:
        return [a["id"] for a in desk.client.get(f"/api/v1/alarms?{query}").json()["items"]]

    assert ids("acknowledged=true") == [seen["id"]]
    assert ids("acknowledged=false&state=open") == [unseen["id"]]
    assert sorted(ids("")) == sorted([seen["id"], unseen["id"]])
    assert desk.client.get("/api/v1/alarms?acknowledged=perhaps").status_code == 422


def test_a_cleared_alarm_can_be_acknowledged_and_a_new_occurrence_starts_unacknowledged(
    desk: Desk,
) -> None:
    first = _alarm(desk)
    desk.alarm(Transition.CLEARED)
    response = _ack(desk, first["id"], note="porte ouverte cette nuit, vu ce matin")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cleared"
    second = _alarm(desk)
    assert second["id"] != first["id"]
    assert second["acknowledged_by"] is None


def test_the_same_occurrence_changing_severity_stays_acknowledged(desk: Desk) -> None:
    alarm = _alarm(desk)
    _ack(desk, alarm["id"], note="vu")
    desk.alarm(Transition.RAISED, severity=Severity.CRITICAL)
    [shown] = desk.client.get("/api/v1/alarms?site_id=S1").json()["items"]
    assert (shown["id"], shown["severity"], shown["acknowledged_by"]) == (
        alarm["id"],
        "critical",
        "noc",
    )


def test_the_live_feed_tells_every_screen(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_routes, "POLL_S", 0.01)
    alarm = _alarm(desk)
    _ack(desk, alarm["id"], note="vu")
    _unack(desk, alarm["id"], {"reason": "pas la bonne"})
    text = desk.client.get("/api/v1/stream?after=0&max_s=0.1").text
    events = [
        json.loads(data)
        for kind, data in re.findall(r"^event: (\w+)\ndata: (.*)$", text, flags=re.MULTILINE)
        if kind == "alarm"
    ]
    assert [(e["change"], e["acknowledged_by"], e["ack_note"]) for e in events[-2:]] == [
        ("acknowledged", "noc", "vu"),
        ("unacknowledged", None, None),
    ]
    assert events[-2]["acknowledged_at"] == "2026-01-05T09:00:00+00:00"


# -- "stops re-notifying": a recurrence of an acknowledged alarm notifies nobody -------------


@pytest.fixture
def recurrences_notify(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NOC that asked to hear of recurrences (not in the shipped events) on a webhook."""
    settings = NotificationSettings(
        events=["opened", "escalated", "sla_threshold", "recurrence"],
        noc_webhooks=["http://noc.example/hook"],
    )
    monkeypatch.setattr(
        "collector.notifications.service.load_notification_settings", lambda: settings
    )


def _nothing(_desk: Desk, _alarm_id: int) -> None:
    pass


def _notified(desk: Desk) -> list[str]:
    with desk.sessions() as session:
        return list(session.scalars(select(Notification.event).order_by(Notification.id)))


@pytest.mark.usefixtures("recurrences_notify")
@pytest.mark.parametrize(
    ("first", "acknowledged", "notified"),
    [
        (_nothing, False, ["opened", "recurrence", "recurrence"]),
        (_ack, True, ["opened"]),
    ],
)
def test_an_acknowledged_alarm_raised_again_notifies_nobody_but_its_ticket_counts_it(
    desk: Desk, first: Any, acknowledged: bool, notified: list[str]
) -> None:
    alarm = _alarm(desk)
    first(desk, alarm["id"])
    for _ in range(2):
        desk.clock.advance(minutes=1)
        desk.alarm(Transition.RAISED)  # the edge says it again: count + 1, a recurrence
    assert _notified(desk) == notified
    [ticket] = desk.tickets()
    assert ticket["recurrences"] == 2
    detail = desk.ticket(ticket["ref"])
    assert [op["action"] for op in detail["operations"]].count("recurrence") == 2
    shown = desk.client.get("/api/v1/alarms?site_id=S1").json()["items"][0]
    assert (shown["count"], shown["acknowledged_by"] is not None) == (3, acknowledged)


def test_acknowledging_leaves_the_ticket_and_its_clock_as_they_were(desk: Desk) -> None:
    alarm = _alarm(desk)
    [ticket] = desk.tickets()
    before = desk.ticket(ticket["ref"])
    desk.clock.advance(minutes=30)
    _ack(desk, alarm["id"], note="vu")
    after = desk.ticket(ticket["ref"])
    # The same ticket, version and log; its clock has run the 30 minutes as it would have.
    assert {k: v for k, v in after.items() if k != "sla"} == {
        k: v for k, v in before.items() if k != "sla"
    }
    assert after["sla"]["elapsed_min"] == before["sla"]["elapsed_min"] + 30
    assert after["sla"]["clock"] == before["sla"]["clock"] == "running"


@pytest.mark.usefixtures("recurrences_notify")
@pytest.mark.parametrize("first", [_nothing, _ack])
def test_the_sla_escalation_of_an_acknowledged_alarms_ticket_still_fires_and_notifies(
    desk: Desk, first: Any
) -> None:
    # Escalation is the contract's clock towards the client's matrix, not the alarm's noise:
    # the NOC having seen the alarm does not stop the client hearing of a breach coming.
    alarm = _alarm(desk)  # major: GTR 480 min, 75 % (level 2) at 360 min
    first(desk, alarm["id"])
    desk.clock.advance(minutes=359)
    desk.timers()
    assert desk.tickets()[0]["escalation_level"] == 1
    desk.clock.advance(minutes=1)
    desk.timers()
    assert desk.tickets()[0]["escalation_level"] == 2
    assert _notified(desk) == ["opened", "sla_threshold", "escalated"]
