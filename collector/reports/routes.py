"""Report routes: JSON, CSV (a zip of one CSV per table, or one table), or a readable page;
clients get their own report only. Period errors become 422 here and nowhere else."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from collector.api.deps import AppClock, DbSession
from collector.i18n import negotiate
from collector.identity.access import Action
from collector.identity.deps import CurrentPrincipal, requires
from collector.identity.scope import visible_site
from collector.reports import operations, periods, service
from collector.reports.errors import PeriodError
from collector.reports.texts import ReportTable

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


def _instant(value: object, name: str) -> datetime:
    try:
        return periods.parse_instant(value, name=name)
    except PeriodError as err:
        # A custom error keeps the message as written (no "Value error, " in front of it).
        raise PydanticCustomError("rfc3339_instant", str(err)) from err


def _since(value: object) -> datetime:
    return _instant(value, "since")


def _until(value: object) -> datetime:
    return _instant(value, "until")


# Checked by ``periods.parse_instant``: pydantic's own datetime reads ``212`` as seconds since 1970.
_INSTANT_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
)
SinceValue = Annotated[datetime, PlainValidator(_since), _INSTANT_SCHEMA]
UntilValue = Annotated[datetime, PlainValidator(_until), _INSTANT_SCHEMA]

Since = Annotated[
    SinceValue | None,
    Query(
        description=(
            "Début inclus : date-heure RFC 3339 avec décalage, ou date (minuit, heure de Paris)"
            " ; défaut : 30 jours avant until. / Start, included: an RFC 3339 date-time with"
            " its offset, or a date (Paris midnight); default 30 days before until."
        ),
        examples=["2026-01-01", "2026-01-05T09:00:00Z"],
    ),
]
Until = Annotated[
    UntilValue | None,
    Query(
        description=(
            "Fin exclue, même forme que since ; défaut : maintenant. since = until est une"
            " période vide. / End, excluded, same form as since; default now. since = until"
            " is an empty period."
        ),
        examples=["2026-02-01", "2026-01-06T09:00:00+01:00"],
    ),
]
_CSV = "text/csv; charset=utf-8"
_MONTHLY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "format=json : le rapport ; format=csv : une archive ZIP d'un CSV par tableau"
            " (tickets, synthèse, disponibilité), ou le seul tableau demandé par table= ;"
            " format=html : une page lisible. CSV pour Excel en français : séparateur « ; »,"
            " décimales « , », UTF-8 avec BOM, oui/non, dates jj/mm/aaaa HH:MM heure de Paris."
            " / json: the report; csv: a ZIP of one CSV per table, or the one table named by"
            " table=; html: a readable page."
        ),
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    },
    404: {"description": "Client inconnu / unknown client"},
}


@router.get(
    "/monthly",
    response_model=service.MonthlyReport,
    dependencies=[requires(Action.REPORT_MONTHLY)],
    responses=_MONTHLY_RESPONSES,
)
def monthly(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    month: Annotated[
        str | None,
        Query(
            pattern=r"^\d{4}-\d{2}$",
            description=(
                "Mois de Paris AAAA-MM (minuit à minuit, heure de Paris) ; défaut : le dernier"
                " mois complet. / A Paris month YYYY-MM; default the last complete month."
            ),
            examples=["2026-01"],
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        Query(
            description=(
                "Le client ; implicite pour un jeton client (le sien), obligatoire sinon."
                " / The client; implied for a client token (its own), required otherwise."
            )
        ),
    ] = None,
    format: Literal["json", "csv", "html"] = "json",
    table: Annotated[
        ReportTable | None,
        Query(
            description=(
                "Avec format=csv : un seul tableau en CSV plutôt que l'archive ZIP des trois."
                " / With format=csv: one table as CSV instead of the ZIP of all three."
            )
        ),
    ] = None,
    accept_language: Annotated[
        str | None,
        Header(
            description=(
                "Langue des CSV et de la page : français par défaut, anglais si préféré."
                " / Language of the CSV and page: French unless English is preferred."
            ),
            examples=["fr-FR", "en;q=0.9, fr;q=0.5"],
        ),
    ] = None,
) -> Any:
    """The monthly QoS/SLA report of a client over a Paris month (clients: their own)."""
    if principal.is_client:
        if client_id is not None and client_id != principal.client_id:
            # As everywhere: another client's data does not exist for a client.
            raise HTTPException(
                status_code=404,
                detail=f"client {client_id} introuvable / client {client_id} not found",
            )
        client_id = principal.client_id
    elif client_id is None:
        raise HTTPException(
            status_code=422,
            detail=(
                "client_id : obligatoire pour un jeton qui n'est pas celui d'un client"
                " / client_id: required unless the token is a client's"
            ),
        )
    assert client_id is not None
    if table is not None and format != "csv":
        raise HTTPException(
            status_code=422,
            detail=f"table : seulement avec format=csv / table: only with format=csv, not {format}",
        )
    try:
        period = (
            periods.last_complete_month(clock.now())
            if month is None
            else periods.parse_month(month)
        )
    except PeriodError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    try:
        report = service.monthly_report(db, client_id=client_id, month=period, now=clock.now())
    except LookupError as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    lang = negotiate(accept_language)
    # Client ids are ASCII identifiers (CLIENT_ID_PATTERN): safe in a header as they are.
    if format == "csv" and table is not None:
        return Response(
            service.to_csv(report, table, lang=lang),
            media_type=_CSV,
            headers=_download(service.csv_file_name(report, table, lang)),
        )
    if format == "csv":
        return Response(
            service.to_zip(report, lang=lang),
            media_type="application/zip",
            headers=_download(f"rapport-sla-{client_id}-{period.label}.zip"),
        )
    if format == "html":
        return HTMLResponse(service.to_html(report, lang=lang), headers=_VARY)
    return report


# The same URL gives French or English: a cache must keep them apart.
_VARY = {"Vary": "Accept-Language"}


def _download(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', **_VARY}


def _period(
    clock: AppClock, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    try:
        return periods.resolve_period(since=since, until=until, now=clock.now())
    except PeriodError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err


@router.get("/tickets-summary", dependencies=[requires(Action.REPORT_OPERATIONS)])
def tickets_summary(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    """Tickets opened in the period (default: the last 30 days) by state, criticality and kind,
    with the mean time to restore and the SLA breaches."""
    start, end = _period(clock, since, until)
    return asdict(operations.ticket_summary(db, principal=principal, since=start, until=end))


@router.get("/malfunctions", dependencies=[requires(Action.REPORT_OPERATIONS)])
def malfunctions(
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    since: Since = None,
    until: Until = None,
    top: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    """Synthesis of malfunctions: alarms of the period by type and by site."""
    start, end = _period(clock, since, until)
    report = operations.malfunctions(db, principal=principal, since=start, until=end, top=top)
    return asdict(report)


@router.get(
    "/equipment/{site_id}/{equipment_id}", dependencies=[requires(Action.REPORT_OPERATIONS)]
)
def equipment(
    site_id: str,
    equipment_id: str,
    db: DbSession,
    principal: CurrentPrincipal,
    clock: AppClock,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    """One equipment: open alarms, alarms of the period, poll status, measured performance."""
    visible_site(db, principal=principal, site_id=site_id)
    start, end = _period(clock, since, until)
    report = operations.equipment_report(
        db, site_id=site_id, equipment_id=equipment_id, since=start, until=end
    )
    return asdict(report)
