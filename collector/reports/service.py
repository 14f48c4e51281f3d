"""The monthly QoS/SLA report of a client: tickets, GTR compliance, penalties, availability."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from collector.alarms.models import Alarm
from collector.identity.scope import client_site_ids
from collector.inventory.models import Client
from collector.problems.models import Problem
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
    opened_at: str
    restored_at: str | None
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


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``2026-01`` -> [2026-01-01, 2026-02-01) in UTC; a bad month is a ValueError."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def monthly_report(session: Session, *, client_id: str, month: str, now: datetime) -> MonthlyReport:
    """Build the report of ``client_id`` for ``month`` (figures as of ``now``)."""
    client = session.get(Client, client_id)
    if client is None:
        raise LookupError(f"client {client_id} not found")
    start, end = month_bounds(month)
    report = MonthlyReport(client_id=client_id, client_name=client.name, month=month)
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
                opened_at=ticket.opened_at.isoformat(),
                restored_at=ticket.restored_at.isoformat() if ticket.restored_at else None,
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


def to_csv(report: MonthlyReport) -> str:
    """One line per ticket, then the totals, then site availability."""
    out = io.StringIO()
    csv_writer = csv.writer(out)

    def writerow(cells: list[object]) -> None:
        # Client references and site names are typed by people: every cell is made safe.
        csv_writer.writerow([spreadsheet_safe(c) for c in cells])

    columns = list(TicketLine.__dataclass_fields__)
    writerow(list(columns))
    for line in report.tickets:
        row = asdict(line)
        writerow([row[c] for c in columns])
    writerow([])
    writerow(["client", report.client_id, "month", report.month])
    writerow(["gtr_compliance_pct", report.gtr_compliance_pct, "breaches", report.breaches])
    writerow(["penalties_eur", report.penalties_eur, "mttr_min", report.mean_time_to_restore_min])
    writerow(["problems_opened", report.problems_opened, "problems_closed", report.problems_closed])
    writerow([])
    writerow(["site_id", "outage_min", "availability_pct"])
    for site in report.sites:
        writerow([site.site_id, site.outage_min, site.availability_pct])
    return out.getvalue()


def to_html(report: MonthlyReport) -> str:
    """A readable page with bar charts (inline SVG: nothing to install)."""
    from html import escape

    def bars(values: dict[str, float], unit: str = "") -> str:
        if not values:
            return "<p>none</p>"
        top = max(values.values()) or 1
        rows = []
        for i, (label, value) in enumerate(values.items()):
            width = 300 * value / top
            rows.append(
                f'<text x="0" y="{20 * i + 14}">{escape(label)}</text>'
                f'<rect x="120" y="{20 * i + 3}" width="{width:.1f}" height="14" fill="#1e88e5"/>'
                f'<text x="{125 + width:.1f}" y="{20 * i + 14}">{value:g}{unit}</text>'
            )
        return (
            f'<svg width="520" height="{20 * len(values) + 6}" font-size="12">{"".join(rows)}</svg>'
        )

    def cell(text: str | None) -> str:
        # A table copied from the page into a spreadsheet must not run formulas either.
        return escape(str(spreadsheet_safe(text or "")))

    ticket_rows = "".join(
        f"<tr><td>{cell(t.ref)}</td><td>{cell(t.client_ref)}</td><td>{cell(t.site_id)}</td>"
        f"<td>{cell(t.criticality)}</td><td>{cell(t.state)}</td>"
        f"<td>{t.elapsed_min:g} / {t.gtr_min:g}</td>"
        f"<td>{'yes' if t.within_gtr else 'NO'}</td><td>{t.penalty_eur:g}</td></tr>"
        for t in report.tickets
    )
    compliance = "-" if report.gtr_compliance_pct is None else f"{report.gtr_compliance_pct:g}"
    mttr = (
        "-" if report.mean_time_to_restore_min is None else f"{report.mean_time_to_restore_min:g}"
    )
    header = (
        "<tr><th>ref</th><th>your ref</th><th>site</th><th>criticality</th><th>state</th>"
        "<th>counted / GTR (min)</th><th>within GTR</th><th>penalty (EUR)</th></tr>"
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>QoS/SLA report {escape(report.client_name)} {report.month}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ccc;padding:.2rem .5rem;text-align:left}}</style></head><body>
<h1>QoS / SLA report — {escape(report.client_name)} — {report.month}</h1>
<p>{len(report.tickets)} tickets; GTR compliance {compliance} %;
{report.breaches} breach(es); penalties {report.penalties_eur:g} EUR; mean time to restore
{mttr} min. Problems: {report.problems_opened} opened, {report.problems_closed} closed.</p>
<h2>Tickets by criticality</h2>{bars({k: float(v) for k, v in report.by_criticality.items()})}
<h2>Tickets by state</h2>{bars({k: float(v) for k, v in report.by_state.items()})}
<h2>Site availability</h2>{bars({s.site_id: s.availability_pct for s in report.sites}, " %")}
<h2>Tickets</h2><table>{header}{ticket_rows}</table>
</body></html>"""
