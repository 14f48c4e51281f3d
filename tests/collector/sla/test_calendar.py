"""Calendars at their exact boundaries (Europe/Paris, French public holidays, DST)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from collector.sla import AlwaysOn, WorkingHours, calendar_from_spec

PARIS = ZoneInfo("Europe/Paris")
HOUR = 3600.0


def paris(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "hours", "expected", "case"),
    [
        (
            paris(2026, 1, 9, 17, 30),
            1,
            paris(2026, 1, 12, 8, 30),
            "Friday 17:30 + 1 h = Monday 08:30",
        ),
        (paris(2026, 4, 3, 17), 2, paris(2026, 4, 7, 9), "Easter Monday is closed"),
        (paris(2026, 5, 13, 17), 2, paris(2026, 5, 15, 9), "Ascension Thursday is closed"),
        (paris(2026, 5, 22, 17), 2, paris(2026, 5, 26, 9), "Whit Monday is closed"),
        (paris(2026, 4, 30, 17), 2, paris(2026, 5, 4, 9), "a holiday on a Friday (1 May)"),
        (paris(2026, 3, 27, 17), 2, paris(2026, 3, 30, 9), "spring DST weekend"),
        (paris(2026, 10, 23, 17), 2, paris(2026, 10, 26, 9), "autumn DST weekend"),
        (paris(2026, 1, 12, 6), 1, paris(2026, 1, 12, 9), "before opening starts at 08:00"),
        (paris(2026, 1, 12, 17), 1, paris(2026, 1, 12, 18), "ending exactly at closing time"),
        (paris(2026, 12, 24, 17), 3, paris(2026, 12, 28, 10), "Christmas Day on a Friday"),
    ],
)
def test_working_hours_deadlines(
    start: datetime, hours: float, expected: datetime, case: str
) -> None:
    calendar = WorkingHours()
    assert calendar.add_working(start, hours * HOUR) == expected, case
    assert calendar.working_seconds(start, expected) == hours * HOUR, case


def test_dst_days_count_real_hours_in_24x7() -> None:
    # 29 March 2026 has 23 hours in Paris, 25 October 2026 has 25.
    spring = AlwaysOn().working_seconds(paris(2026, 3, 29, 0), paris(2026, 3, 30, 0))
    autumn = AlwaysOn().working_seconds(paris(2026, 10, 25, 0), paris(2026, 10, 26, 0))
    assert (spring, autumn) == (23 * HOUR, 25 * HOUR)


def test_24x7_deadline_is_plain_addition() -> None:
    start = paris(2026, 1, 9, 17, 30)
    assert AlwaysOn().add_working(start, 4 * HOUR) == start + timedelta(hours=4)


def test_urgent_desk_is_open_on_saturday_until_17_and_closed_on_sunday() -> None:
    desk = calendar_from_spec("urgent_desk")
    # Saturday 16:30 with a 1-hour target: 30 min on Saturday, then Monday 08:00 + 30 min.
    assert desk.add_working(paris(2026, 1, 10, 16, 30), HOUR) == paris(2026, 1, 12, 8, 30)


def test_unknown_calendar_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown calendar 'weekends'"):
        calendar_from_spec("weekends")


def test_custom_hours() -> None:
    calendar = WorkingHours(opens=time(9), closes=time(12), weekdays=frozenset({0}))
    assert calendar.working_seconds(paris(2026, 1, 12, 0), paris(2026, 1, 19, 0)) == 3 * HOUR
