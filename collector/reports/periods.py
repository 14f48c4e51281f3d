"""Report periods: Paris months and RFC 3339 instants, checked before any query runs.

A month is a Paris month (local midnight to local midnight, so March is 743 h long and October
745 h); an instant is an RFC 3339 date-time with its offset, or a date (Paris midnight at the
start of that day). Every period is half-open, ``[start, end)``, in UTC, so ``since == until``
is an empty period. Errors name the parameter, French first, English second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from collector.reports.errors import PeriodError

__all__ = [
    "PARIS",
    "Month",
    "last_complete_month",
    "month_period",
    "paris_date",
    "paris_datetime",
    "parse_instant",
    "parse_month",
    "resolve_period",
]

PARIS = ZoneInfo("Europe/Paris")
DEFAULT_SPAN = timedelta(days=30)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# RFC 3339 section 5.6: the offset is required (a local time without one is ambiguous).
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})"
)
# A "+" left unencoded in a query string arrives as a space: worth saying so.
_LOST_PLUS = re.compile(r".*\d{2}:\d{2}:\d{2}(\.\d+)? \d{2}:\d{2}")


@dataclass(frozen=True)
class Month:
    """A Paris calendar month: its ``YYYY-MM`` label and its bounds in UTC, ``[start, end)``."""

    label: str
    start: datetime
    end: datetime


def month_period(year: int, month: int) -> Month:
    """The Paris month ``year-month``; a month whose bounds fall outside what a datetime holds
    (0001-01 starts before year 1 in UTC, 9999-12 ends in year 10000) is a PeriodError."""
    label = f"{year:04d}-{month:02d}"
    if not 1 <= month <= 12:
        raise PeriodError(
            f"month : mois {label} invalide, le mois va de 01 à 12"
            f" / month: {label} is not a month, months go from 01 to 12"
        )
    try:
        start = datetime(year, month, 1, tzinfo=PARIS)
        after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=PARIS)
        return Month(label=label, start=start.astimezone(UTC), end=after.astimezone(UTC))
    except (ValueError, OverflowError) as err:
        raise PeriodError(
            f"month : le mois {label} sort des dates calculables (0001-02 à 9999-11)"
            f" / month: {label} is outside the dates that can be computed (0001-02 to 9999-11)"
        ) from err


def parse_month(value: object) -> Month:
    """``YYYY-MM`` as a Paris month; anything else is a PeriodError naming ``month``."""
    match = _MONTH.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PeriodError(
            f"month : attendu AAAA-MM (par exemple 2026-01), reçu {_shown(value)}"
            f" / month: expected YYYY-MM (e.g. 2026-01), got {_shown(value)}"
        )
    return month_period(int(match.group(1)), int(match.group(2)))


def last_complete_month(now: datetime) -> Month:
    """The last Paris month wholly before ``now`` (the default of the monthly report)."""
    local = now.astimezone(PARIS)
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return month_period(year, month)


def parse_instant(value: object, *, name: str) -> datetime:
    """An RFC 3339 date-time with its offset, or a date (Paris midnight at its start), in UTC.

    Never an integer: ``212`` is refused, not read as seconds since 1970."""
    text = value if isinstance(value, str) else None
    try:
        if text is not None and _DATE.fullmatch(text):
            local = datetime.combine(date.fromisoformat(text), datetime.min.time(), PARIS)
            return local.astimezone(UTC)
        if text is not None and _DATE_TIME.fullmatch(text):
            return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise PeriodError(
            f"{name} : {_shown(value)} n'est pas une date existante et calculable"
            f" / {name}: {_shown(value)} is not an existing date that can be computed"
        ) from err
    hint = ""
    if text is not None and _LOST_PLUS.fullmatch(text):
        hint = " (« + » s'écrit %2B dans une URL / write + as %2B in a URL)"
    raise PeriodError(
        f"{name} : attendu une date-heure RFC 3339 avec son décalage (2026-01-05T09:00:00Z,"
        f" 2026-01-05T10:00:00%2B01:00) ou une date (2026-01-05), reçu {_shown(value)}"
        f" / {name}: expected an RFC 3339 date-time with its offset or a date,"
        f" got {_shown(value)}{hint}"
    )


def resolve_period(
    *, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """``[since, until)``: until defaults to ``now``, since to 30 days before until; equal
    bounds are an empty period, since after until a PeriodError naming both."""
    end = until or now
    if since is None:
        try:
            since = end - DEFAULT_SPAN
        except OverflowError:
            since = datetime.min.replace(tzinfo=UTC)
    if since > end:
        shown_end = "maintenant / now" if until is None else end.isoformat()
        raise PeriodError(
            f"since ({since.isoformat()}) est après until ({shown_end}) : la période serait"
            f" à l'envers / since is after until: the period would run backwards"
        )
    return since, end


def paris_datetime(value: datetime) -> str:
    """``dd/mm/yyyy HH:MM`` in Paris time (what French spreadsheets and readers expect)."""
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def paris_date(value: datetime) -> str:
    """``dd/mm/yyyy`` in Paris time."""
    return value.astimezone(PARIS).strftime("%d/%m/%Y")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
