"""The monthly QoS/SLA report of a client: tickets, GTR compliance, penalties, availability."""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.i18n import Language
from collector.identity.scope import client_site_ids
from collector.inventory.models import Client
from collector.problems.models import Problem
from collector.reports.periods import PARIS, Month, paris_date, paris_datetime
from collector.reports.texts import ReportTable, label, month_name, text
from collector.tickets.models import Ticket
from collector.tickets.sla import sla_view

# Alarms that make a site unavailable to the client for the availability figure.
OUTAGE_SEVERITIES = ("critical", "major")

# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: object) -> object:
    """A cell no spreadsheet runs as a formula: text starting with = + - @ (or a tab or CR)
    gets a leading ``'``; numbers, also written as text ("-12.5"), stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


@dataclass
class TicketLine:
    """One ticket of the month."""

    ref: str
    client_ref: str | None
    site_id: str | None
    kind: str
    criticality: str
    state: str
    opened_at: datetime
    restored_at: datetime | None
    elapsed_min: float
    gtr_min: float
    within_gtr: bool
    penalty_eur: float


@dataclass
class SiteAvailability:
    """Share of the month a site had no critical/major alarm open."""

    site_id: str
    outage_min: float
    availability_pct: float


@dataclass
class MonthlyReport:
    """Everything the monthly review needs."""

    client_id: str
    client_name: str
    month: str
    # The Paris month in UTC, [since, until): 743 h in March, 745 h in October.
    since: datetime
    until: datetime
    tickets: list[TicketLine] = field(default_factory=list)
    by_criticality: dict[str, int] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)
    gtr_compliance_pct: float | None = None
    breaches: int = 0
    penalties_eur: float = 0.0
    mean_time_to_restore_min: float | None = None
    sites: list[SiteAvailability] = field(default_factory=list)
    # Problem records at the client's sites: opened (proposed or recorded, not rejected) and
    # closed with a permanent fix during the month.
    problems_opened: int = 0
    problems_closed: int = 0


def monthly_report(
    session: Session, *, client_id: str, month: Month, now: datetime
) -> MonthlyReport:
    """Build the report of ``client_id`` for the Paris ``month`` (figures as of ``now``)."""
    client = session.get(Client, client_id)
    if client is None:
        raise LookupError(f"client {client_id} inconnu / client {client_id} not found")
    start, end = month.start, month.end
    report = MonthlyReport(
        client_id=client_id, client_name=client.name, month=month.label, since=start, until=end
    )
    sites = list(session.scalars(client_site_ids(client_id)))
    tickets = session.scalars(
        select(Ticket)
        .where(
            or_(Ticket.client_id == client_id, Ticket.site_id.in_(sites)),
            Ticket.opened_at >= start,
            Ticket.opened_at < end,
        )
        .order_by(Ticket.opened_at)
    )
    restore_times = []
    for ticket in tickets:
        view = sla_view(session, ticket, now=min(now, end) if ticket.restored_at is None else now)
        within = not view.breached
        report.tickets.append(
            TicketLine(
                ref=ticket.ref or "",
                client_ref=ticket.client_ref,
                site_id=ticket.site_id,
                kind=ticket.kind,
                criticality=ticket.criticality,
                state=ticket.state,
                opened_at=ticket.opened_at,
                restored_at=ticket.restored_at,
                elapsed_min=view.elapsed_min,
                gtr_min=view.gtr_min,
                within_gtr=within,
                penalty_eur=view.penalty_eur,
            )
        )
        report.by_criticality[ticket.criticality] = (
            report.by_criticality.get(ticket.criticality, 0) + 1
        )
        report.by_state[ticket.state] = report.by_state.get(ticket.state, 0) + 1
        report.breaches += int(not within)
        report.penalties_eur += view.penalty_eur
        if ticket.restored_at is not None:
            restore_times.append((ticket.restored_at - ticket.opened_at).total_seconds() / 60)
    if report.tickets:
        report.gtr_compliance_pct = round(
            100 * sum(t.within_gtr for t in report.tickets) / len(report.tickets), 1
        )
    if restore_times:
        report.mean_time_to_restore_min = round(sum(restore_times) / len(restore_times), 1)
    report.sites = [_availability(session, site, start, end, now) for site in sorted(set(sites))]
    at_sites = Problem.site_id.in_(sites)
    report.problems_opened = session.scalar(
        select(func.count()).where(
            at_sites, Problem.proposed_at >= start, Problem.proposed_at < end,
            Problem.state != "rejected",
        )
    ) or 0  # fmt: skip
    report.problems_closed = session.scalar(
        select(func.count()).where(at_sites, Problem.closed_at >= start, Problem.closed_at < end)
    ) or 0  # fmt: skip
    return report


def _availability(
    session: Session, site_id: str, start: datetime, end: datetime, now: datetime
) -> SiteAvailability:
    horizon = min(end, now)
    total = max((horizon - start).total_seconds(), 1.0)
    intervals = []
    for alarm in session.scalars(
        select(Alarm).where(
            Alarm.site_id == site_id,
            Alarm.severity.in_(OUTAGE_SEVERITIES),
            Alarm.test.is_(False),
            Alarm.first_seen < horizon,
            or_(Alarm.cleared_at.is_(None), Alarm.cleared_at > start),
        )
    ):
        lo = max(alarm.first_seen, start)
        hi = min(alarm.cleared_at or horizon, horizon)
        if hi > lo:
            intervals.append((lo, hi))
    outage = 0.0
    for lo, hi in _merge(intervals):
        outage += (hi - lo).total_seconds()
    return SiteAvailability(
        site_id=site_id,
        outage_min=round(outage / 60, 1),
        availability_pct=round(100 * (1 - outage / total), 3),
    )


def _merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


_TICKET_COLUMNS = tuple(TicketLine.__dataclass_fields__)
_LABELLED = frozenset({"kind", "criticality", "state"})


def csv_cell(value: object, lang: Language = "fr") -> str:
    """One cell as French Excel reads it: ``,`` decimals, ``oui``/``non``, Paris
    ``dd/mm/yyyy HH:MM`` dates, nothing for None, and text never run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return text("yes" if value else "no", lang)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        shown = repr(value)
        if "e" in shown:  # Excel would not read 1e-05 in a French locale
            shown = f"{value:.12f}".rstrip("0").rstrip(".")
        return shown.replace(".", ",") if lang == "fr" else shown
    if isinstance(value, datetime):
        return paris_datetime(value)
    return str(spreadsheet_safe(str(value)))


def table_rows(
    report: MonthlyReport, table: ReportTable, lang: Language = "fr"
) -> list[list[object]]:
    """One table of the report, its header first, as values (``csv_cell`` formats them)."""
    if table is ReportTable.TICKETS:
        rows: list[list[object]] = [[text(f"col.{c}", lang) for c in _TICKET_COLUMNS]]
        for line in report.tickets:
            rows.append(
                [
                    label(str(v), lang) if c in _LABELLED else v
                    for c, v in ((c, getattr(line, c)) for c in _TICKET_COLUMNS)
                ]
            )
        return rows
    if table is ReportTable.SITES:
        header: list[object] = [
            text(k, lang) for k in ("col.site_id", "col.outage_min", "col.availability_pct")
        ]
        return [header] + [[s.site_id, s.outage_min, s.availability_pct] for s in report.sites]
    summary: list[list[object]] = [
        [text("col.indicator", lang), text("col.value", lang)],
        [text("sum.client_id", lang), report.client_id],
        [text("sum.client_name", lang), report.client_name],
        [text("sum.month", lang), report.month],
        [text("sum.since", lang), report.since],
        [text("sum.until", lang), report.until],
        [text("sum.tickets", lang), len(report.tickets)],
        [text("sum.gtr_compliance_pct", lang), report.gtr_compliance_pct],
        [text("sum.breaches", lang), report.breaches],
        [text("sum.penalties_eur", lang), report.penalties_eur],
        [text("sum.mttr_min", lang), report.mean_time_to_restore_min],
        [text("sum.problems_opened", lang), report.problems_opened],
        [text("sum.problems_closed", lang), report.problems_closed],
    ]
    for key, counts in (
        ("sum.by_criticality", report.by_criticality),
        ("sum.by_state", report.by_state),
    ):
        summary += [[text(key, lang, name=label(c, lang)), n] for c, n in counts.items()]
    return summary


def to_csv(report: MonthlyReport, table: ReportTable, *, lang: Language = "fr") -> bytes:
    """One table as a CSV file French Excel opens in columns: ``;``, UTF-8 with a BOM."""
    out = io.StringIO()
    # Excel's French locale separates list items with ";" ("," is the decimal mark), and
    # reads a file as UTF-8 only when it starts with a BOM.
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for row in table_rows(report, table, lang):
        # Client references and site names are typed by people: every cell is made safe.
        writer.writerow([csv_cell(cell, lang) for cell in row])
    return out.getvalue().encode("utf-8-sig")


def csv_file_name(report: MonthlyReport, table: ReportTable, lang: Language = "fr") -> str:
    """The table's file name; client and month in it, so Excel can open two months at once."""
    return f"{report.client_id}-{report.month}-{text(f'file.{table.value}', lang)}.csv"


def to_zip(report: MonthlyReport, *, lang: Language = "fr") -> bytes:
    """Every table of the report, one CSV file each, in one zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in ReportTable:
            info = zipfile.ZipInfo(csv_file_name(report, table, lang), _zip_time(report))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, to_csv(report, table, lang=lang))
    return buffer.getvalue()


def _zip_time(report: MonthlyReport) -> tuple[int, int, int, int, int, int]:
    # The same report gives the same bytes: members are dated at the period's end in Paris,
    # never with the wall clock; zip dates only go from 1980 to 2107.
    local = report.until.astimezone(PARIS)
    if not 1980 <= local.year <= 2107:
        return (1980, 1, 1, 0, 0, 0)
    return (local.year, local.month, local.day, local.hour, local.minute, local.second)


def to_html(report: MonthlyReport, *, lang: Language = "fr") -> str:
    """A readable page with its Paris period and bar charts (inline SVG: nothing to install)."""

    def bars(values: dict[str, float], unit: str = "") -> str:
        if not values:
            return f"<p>{text('none', lang)}</p>"
        top = max(values.values()) or 1
        rows = []
        for i, (name, value) in enumerate(values.items()):
            width = 300 * value / top
            rows.append(
                f'<text x="0" y="{20 * i + 14}">{escape(name)}</text>'
                f'<rect x="140" y="{20 * i + 3}" width="{width:.1f}" height="14" fill="#1e88e5"/>'
                f'<text x="{145 + width:.1f}" y="{20 * i + 14}">{number(value)}{unit}</text>'
            )
        return (
            f'<svg width="540" height="{20 * len(values) + 6}" font-size="12">{"".join(rows)}</svg>'
        )

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:g}".replace(".", "," if lang == "fr" else ".")

    def cell(value: str | None) -> str:
        # A table copied from the page into a spreadsheet must not run formulas either.
        return escape(str(spreadsheet_safe(value or "")))

    yes, no = text("yes", lang), text("no", lang)
    ticket_rows = "".join(
        f"<tr><td>{cell(t.ref)}</td><td>{cell(t.client_ref)}</td><td>{cell(t.site_id)}</td>"
        f"<td>{escape(label(t.criticality, lang))}</td><td>{escape(label(t.state, lang))}</td>"
        f"<td>{paris_datetime(t.opened_at)}</td>"
        f"<td>{number(t.elapsed_min)} / {number(t.gtr_min)}</td>"
        f"<td>{yes if t.within_gtr else f'<b>{no}</b>'}</td><td>{number(t.penalty_eur)}</td></tr>"
        for t in report.tickets
    )
    columns = (
        "col.ref", "col.client_ref", "col.site_id", "col.criticality", "col.state",
        "col.opened_at", "page.counted_gtr", "col.within_gtr", "col.penalty_eur",
    )  # fmt: skip
    header = "<tr>" + "".join(f"<th>{escape(text(c, lang))}</th>" for c in columns) + "</tr>"
    hours = round((report.until - report.since).total_seconds() / 3600)
    last_day = paris_date(report.until - timedelta(hours=12))  # the day before local midnight
    period = text("page.period", lang, first=paris_date(report.since), last=last_day, hours=hours)
    summary = text(
        "page.summary", lang, tickets=len(report.tickets),
        compliance=number(report.gtr_compliance_pct), breaches=report.breaches,
        penalties=number(report.penalties_eur), mttr=number(report.mean_time_to_restore_min),
        opened=report.problems_opened, closed=report.problems_closed,
    )  # fmt: skip
    title = (
        f"{text('page.title', lang)} — {escape(report.client_name)}"
        f" — {month_name(report.month, lang)}"
    )
    by_criticality = {label(k, lang): float(v) for k, v in report.by_criticality.items()}
    by_state = {label(k, lang): float(v) for k, v in report.by_state.items()}
    availability = {s.site_id: s.availability_pct for s in report.sites}
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ccc;padding:.2rem .5rem;text-align:left}}</style></head><body>
<h1>{title}</h1>
<p class="period">{escape(period)}</p>
<p>{escape(summary)}</p>
<h2>{text("page.by_criticality", lang)}</h2>{bars(by_criticality)}
<h2>{text("page.by_state", lang)}</h2>{bars(by_state)}
<h2>{text("page.availability", lang)}</h2>{bars(availability, " %")}
<h2>{text("page.tickets", lang)}</h2><table>{header}{ticket_rows}</table>
</body></html>"""
