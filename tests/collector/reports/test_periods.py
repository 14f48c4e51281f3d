"""Report periods: Paris months (DST months included), strict RFC 3339 instants, the default
month, and periods that cannot be computed refused rather than crashing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.reports.errors import PeriodError
from collector.reports.periods import (
    last_complete_month,
    parse_instant,
    parse_month,
    resolve_period,
)


@pytest.mark.parametrize(
    ("month", "start", "hours"),
    [
        ("2026-01", datetime(2025, 12, 31, 23, tzinfo=UTC), 744),
        ("2026-03", datetime(2026, 2, 28, 23, tzinfo=UTC), 743),  # summer time on the 29th
        ("2026-10", datetime(2026, 9, 30, 22, tzinfo=UTC), 745),  # winter time on the 25th
        ("0001-02", datetime(1, 1, 31, 23, 50, 39, tzinfo=UTC), 672),  # Paris mean time
        ("9999-11", datetime(9999, 10, 31, 23, tzinfo=UTC), 720),
    ],
)
def test_a_month_is_a_paris_month(month: str, start: datetime, hours: int) -> None:
    period = parse_month(month)
    assert period.start == start
    assert period.end - period.start == timedelta(hours=hours)


@pytest.mark.parametrize(
    "month",
    ["0000-01", "0001-01", "9999-12", "2026-00", "2026-13", "2026-1", "26-01", "", "2026-01-01"],
)
def test_a_month_that_cannot_be_computed_is_refused_by_name(month: str) -> None:
    with pytest.raises(PeriodError, match=r"^month :"):
        parse_month(month)


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (datetime(2026, 1, 5, 9, tzinfo=UTC), "2025-12"),
        (datetime(2026, 1, 31, 22, 59, tzinfo=UTC), "2025-12"),  # 23:59 in Paris, 31 January
        (datetime(2026, 1, 31, 23, 0, tzinfo=UTC), "2026-01"),  # midnight in Paris, 1 February
        (datetime(2026, 4, 1, 0, 30, tzinfo=UTC), "2026-03"),
    ],
)
def test_the_default_month_is_the_last_complete_paris_month(now: datetime, month: str) -> None:
    assert last_complete_month(now).label == month


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-01-05T09:00:00Z", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05T10:00:00+01:00", datetime(2026, 1, 5, 9, tzinfo=UTC)),
        ("2026-01-05t09:00:00.250z", datetime(2026, 1, 5, 9, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-01-05", datetime(2026, 1, 4, 23, tzinfo=UTC)),  # Paris midnight
        ("2026-07-05", datetime(2026, 7, 4, 22, tzinfo=UTC)),  # summer time
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_instants_are_rfc_3339_date_times_or_dates(text: str, instant: datetime) -> None:
    assert parse_instant(text, name="since") == instant


@pytest.mark.parametrize(
    "text",
    [
        "212",  # never seconds since 1970
        "1767603600",
        "2026-01-05T09:00:00",  # no offset: which time zone?
        "2026-02-30",
        "2026-01-05T24:00:00Z",
        "0001-01-01",  # Paris midnight is before year 1 in UTC
        "9999-12-31T23:00:00-01:00",
        "yesterday",
        212,
    ],
)
def test_anything_else_is_refused_naming_the_parameter(text: object) -> None:
    with pytest.raises(PeriodError, match=r"^until :"):
        parse_instant(text, name="until")


def test_a_plus_lost_in_the_url_is_pointed_out() -> None:
    with pytest.raises(PeriodError, match="%2B"):
        parse_instant("2026-01-05T10:00:00 01:00", name="since")


NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
DAY = datetime(2026, 1, 1, tzinfo=UTC)


def test_periods_default_to_the_last_30_days_and_may_be_empty() -> None:
    assert resolve_period(since=None, until=None, now=NOW) == (NOW - timedelta(days=30), NOW)
    assert resolve_period(since=DAY, until=DAY, now=NOW) == (DAY, DAY)
    early = datetime(1, 1, 2, tzinfo=UTC)
    assert resolve_period(since=None, until=early, now=NOW)[0] == datetime(1, 1, 1, tzinfo=UTC)


def test_a_backwards_period_names_both_bounds() -> None:
    with pytest.raises(PeriodError, match=r"since .* until"):
        resolve_period(since=DAY + timedelta(seconds=1), until=DAY, now=NOW)
