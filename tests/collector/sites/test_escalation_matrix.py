"""The contacts and escalation matrix: editable by the NOC, readable by the client for its own
entries, and an escalation notifies exactly the level's contacts whose hours are open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from collector.notifications.models import Notification
from collector.notifications.settings import NotificationSettings, SmtpSettings
from protocol import Transition
from tests.collector.conftest import Desk

ALPHA = {
    "contacts": [
        {"level": 1, "name": "Alpha NOC", "email": "noc@alpha.example"},
        {"level": 2, "name": "On-call manager", "email": "oncall@alpha.example", "hours": "24x7"},
        {
            "level": 2,
            "name": "Service manager",
            "role": "office hours",
            "email": "sm@alpha.example",
            "phone": "+33 4 72 00 00 02",
            "hours": "working_hours",
        },
        {"level": 2, "name": "Night desk", "phone": "+33 4 72 00 00 09"},
        {"level": 3, "name": "Director", "email": "director@alpha.example"},
    ]
}
BETA = {"contacts": [{"level": 2, "name": "Beta manager", "email": "manager@beta.example"}]}


@pytest.fixture
def smtp_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = NotificationSettings(
        smtp=SmtpSettings(host="127.0.0.1", port=2525, sender="sw@operator.example")
    )
    monkeypatch.setattr(
        "collector.notifications.service.load_notification_settings", lambda: settings
    )


def _ticket_at_nro(desk: Desk) -> str:
    desk.alarm(Transition.RAISED, "hvac_fault", site="NRO-LYO-01")  # op-alpha's site
    ref: str = desk.tickets()[0]["ref"]
    return ref


def _escalation_mails(desk: Desk, ref: str) -> list[str]:
    with desk.sessions() as session:
        return sorted(
            session.scalars(
                select(Notification.recipient).where(
                    Notification.ticket_ref == ref,
                    Notification.event == "escalated",
                    Notification.recipient.not_like("%@operator.example"),
                )
            )
        )


def test_the_noc_edits_the_matrix_and_a_client_reads_only_its_own(desk: Desk) -> None:
    assert desk.client.put("/api/v1/clients/op-alpha/escalation", json=ALPHA).status_code == 200
    assert desk.client.put("/api/v1/clients/op-beta/escalation", json=BETA).status_code == 200
    mine = desk.client.get("/api/v1/clients/op-alpha/escalation", headers=desk.alpha).json()
    assert [(c["level"], c["name"]) for c in mine["contacts"]] == [
        (1, "Alpha NOC"),
        (2, "On-call manager"),
        (2, "Service manager"),
        (2, "Night desk"),
        (3, "Director"),
    ]
    other = desk.client.get("/api/v1/clients/op-beta/escalation", headers=desk.alpha)
    assert other.status_code == 404 and "Beta manager" not in other.text
    edit = desk.client.put("/api/v1/clients/op-alpha/escalation", json=BETA, headers=desk.alpha)
    assert edit.status_code == 403


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("level", 4, "less than or equal to 3"),
        ("hours", "nights", "24x7"),
        ("email", None, "give an email or a phone number"),
    ],
)
def test_a_bad_matrix_is_refused_with_the_reason(
    desk: Desk, field: str, value: Any, message: str
) -> None:
    entry: dict[str, Any] = {"level": 1, "name": "X", "email": "x@alpha.example", field: value}
    refused = desk.client.put("/api/v1/clients/op-alpha/escalation", json={"contacts": [entry]})
    assert refused.status_code == 422 and message in refused.text


def test_escalation_to_level_2_notifies_exactly_the_level_2_contacts_within_their_hours(
    desk: Desk, smtp_configured: None
) -> None:
    desk.client.put("/api/v1/clients/op-alpha/escalation", json=ALPHA)
    desk.client.put("/api/v1/clients/op-beta/escalation", json=BETA)
    # Monday 5 January 2026, 10:00 in Paris: office hours.
    ref = _ticket_at_nro(desk)
    assert desk.ticket(ref)["escalation_level"] == 1  # a ticket starts at level 1
    desk.client.post(f"/api/v1/tickets/{ref}/escalate", json={"detail": "no progress"})
    assert _escalation_mails(desk, ref) == [
        "oncall@alpha.example",  # level 2, 24/7
        "sm@alpha.example",  # level 2, office hours: open now
    ]  # not level 1, not the phone-only night desk, not the director, not another client's
    desk.client.post(f"/api/v1/tickets/{ref}/escalate", json={"detail": "still nothing"})
    assert "director@alpha.example" in _escalation_mails(desk, ref)  # level 3 now
    # Saturday 10 January, 23:00 in Paris: the service manager's hours are closed.
    desk.clock.set(datetime(2026, 1, 10, 22, 0, tzinfo=UTC))
    desk.alarm(Transition.RAISED, "fire", site="NRO-LYO-01")
    night = next(t["ref"] for t in desk.tickets() if t["ref"] != ref)
    desk.client.post(f"/api/v1/tickets/{night}/escalate", json={"detail": "fire"})
    assert _escalation_mails(desk, night) == ["oncall@alpha.example"]
