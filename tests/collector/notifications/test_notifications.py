"""Ticket notifications through a real SMTP server and a real HTTP webhook, once each, retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.identity.access import Principal, Role
from collector.inventory.models import Client, Service, Site
from collector.listeners import alarm_engine
from collector.notifications.models import Notification
from collector.notifications.service import deliver_due
from collector.notifications.settings import NotificationSettings, SmtpSettings
from collector.tickets import escalation, transitions
from collector.tickets.flows import TicketAlarmListener
from collector.tickets.lifecycle import TicketState
from protocol import AlarmEvent, Severity, Transition
from simulators.broker import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012
    fail_next = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Hook.fail_next:
            _Hook.fail_next -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Hook.received.append((self.headers["Idempotency-Key"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_open_qualify_escalate_restore_close_notify_noc_and_client_once(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    smtp: tuple[_Inbox, int],
    webhook: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    settings = NotificationSettings(
        noc_emails=["noc@operator.example"],
        noc_webhooks=[webhook],
        smtp=SmtpSettings(host="127.0.0.1", port=port, sender="sw@operator.example"),
    )
    monkeypatch.setattr(
        "collector.notifications.service.load_notification_settings", lambda: settings
    )
    with sessions() as session:
        session.add(Site(site_id="PM-1", kind="pm"))
        session.add(Client(client_id="op-alpha", name="Alpha", notify_emails="ops@alpha.example"))
        session.flush()
        session.add(Service(client_id="op-alpha", site_id="PM-1", hosting_ref="HEB00001"))
        session.flush()
        alarm_engine([TicketAlarmListener()]).apply_event(
            session,
            event=AlarmEvent(
                agent_id="a1",
                stream_id="0" * 32,
                seq=1,
                ts=clock.now(),
                clock_synced=True,
                site_id="PM-1",
                equipment_id="eq",
                point="p",
                alarm_type="hvac_fault",
                transition=Transition.RAISED,
                severity=Severity.MAJOR,
            ),
            agent_id="a1",
            now=clock.now(),
        )
        ref = session.scalars(select(Notification.ticket_ref)).first()
        assert ref is not None
        noc = Principal(user_id="noc-1", role=Role.NOC)
        transitions.transition(
            session, ref=ref, to=TicketState.QUALIFIED, principal=noc, now=clock.now()
        )
        escalation.escalate(session, ref=ref, principal=noc, now=clock.now(), detail="customer VIP")
        session.commit()
    _Hook.fail_next = 1  # the webhook is down once: retried later
    with sessions() as session:
        deliver_due(session, now=clock.now(), settings=settings)
        deliver_due(session, now=clock.now(), settings=settings)  # nothing due twice
        session.commit()
    clock.advance(seconds=31)
    with sessions() as session:
        deliver_due(session, now=clock.now(), settings=settings)
        session.commit()
        rows = list(session.scalars(select(Notification)))
    assert {r.status for r in rows} == {"sent"}
    events = sorted((r.event, r.channel, r.recipient) for r in rows)
    assert events == sorted(
        (event, channel, recipient)
        for event in ("opened", "qualified", "escalated")
        for channel, recipient in [
            ("webhook", webhook),
            ("email", "noc@operator.example"),
            ("email", "ops@alpha.example"),
        ]
    )
    assert len(inbox.messages) == 6
    assert sorted(b["event"] for _, b in _Hook.received) == ["escalated", "opened", "qualified"]
    assert len({key for key, _ in _Hook.received}) == 3
