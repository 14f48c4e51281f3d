"""The SLA clock log: freezes, contract changes, thresholds, and where wall time goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.sla import (
    AlwaysOn,
    ClockEvent,
    ClockState,
    WorkingHours,
    deadline,
    due_thresholds,
    figures,
    next_timer,
)
from tests.collector.sla.test_calendar import HOUR, paris
from tests.conftest import budget

R, F, P, S = ClockState.RUNNING, ClockState.FROZEN, ClockState.PLANNED_WORKS, ClockState.STOPPED


def test_a_freeze_across_a_weekend_is_not_counted() -> None:
    log = [
        ClockEvent(paris(2026, 1, 9, 10), R, "opened"),
        ClockEvent(paris(2026, 1, 9, 12), F, "question to the client", "noc-1"),
        ClockEvent(paris(2026, 1, 12, 10), R, "client answered", "client-a"),
    ]
    f = figures(log, calendar=AlwaysOn(), now=paris(2026, 1, 12, 12))
    assert f.elapsed_s == 4 * HOUR
    assert f.frozen_s == 70 * HOUR


def test_a_contract_change_mid_ticket_keeps_frozen_time() -> None:
    log = [
        ClockEvent(paris(2026, 1, 12, 9), R),
        ClockEvent(paris(2026, 1, 12, 11), F),
        ClockEvent(paris(2026, 1, 13, 9), R),
    ]
    now = paris(2026, 1, 13, 10)
    before = figures(log, calendar=AlwaysOn(), now=now)
    after = figures(log, calendar=WorkingHours(), now=now)
    assert before.frozen_s == after.frozen_s == 22 * HOUR
    assert after.elapsed_s == 3 * HOUR  # 2 h Monday + 1 h Tuesday within 08-18
    # The deadline moves with the contract; the frozen day never comes back into it.
    assert deadline(log, calendar=WorkingHours(), gtr_s=4 * HOUR, now=now) == paris(2026, 1, 13, 11)


def test_deadline_is_unknown_while_frozen_and_past_once_breached() -> None:
    log = [ClockEvent(paris(2026, 1, 12, 9), R), ClockEvent(paris(2026, 1, 12, 10), F)]
    assert deadline(log, calendar=AlwaysOn(), gtr_s=4 * HOUR, now=paris(2026, 1, 12, 20)) is None
    breached = [ClockEvent(paris(2026, 1, 12, 9), R)]
    assert deadline(breached, calendar=AlwaysOn(), gtr_s=4 * HOUR, now=paris(2026, 1, 12, 20)) == (
        paris(2026, 1, 12, 13)
    )


def test_each_threshold_fires_once_and_never_while_frozen() -> None:
    start = paris(2026, 1, 12, 9)
    log = [ClockEvent(start, R)]
    fired: set[float] = set()
    fractions = (0.5, 0.75, 1.0)
    timeline = []
    for minute in range(0, 5 * 60, 15):
        now = start + timedelta(minutes=minute)
        due = due_thresholds(
            log, calendar=AlwaysOn(), gtr_s=4 * HOUR, fractions=fractions, fired=fired, now=now
        )
        fired.update(due)
        timeline += [(minute, f) for f in due]
    assert timeline == [(120, 0.5), (180, 0.75), (240, 1.0)]
    frozen = [ClockEvent(start, R), ClockEvent(start + timedelta(hours=1), F)]
    assert (
        due_thresholds(
            frozen,
            calendar=AlwaysOn(),
            gtr_s=HOUR,
            fractions=fractions,
            fired=set(),
            now=start + timedelta(hours=9),
        )
        == []
    )


def test_next_timer_is_the_exact_instant_of_the_next_threshold() -> None:
    start = paris(2026, 1, 9, 17)
    log = [ClockEvent(start, R)]
    when = next_timer(
        log, calendar=WorkingHours(), gtr_s=4 * HOUR, fractions=(0.5, 1.0), fired={0.5}, now=start
    )
    assert when == paris(2026, 1, 12, 11)  # 1 h Friday + 3 h Monday


@st.composite
def _logs(draw: st.DrawFn) -> tuple[list[ClockEvent], datetime]:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 400_000)))
    events = [ClockEvent(t, R)]
    for _ in range(draw(st.integers(0, 12))):
        t += timedelta(minutes=draw(st.integers(0, 5000)))
        events.append(ClockEvent(t, draw(st.sampled_from([R, F, P, S]))))
    now = t + timedelta(minutes=draw(st.integers(0, 5000)))
    return events, now


@settings(max_examples=budget(short=300, long=20_000), deadline=None)
@given(_logs(), st.sampled_from(["24x7", "working_hours"]))
def test_the_parts_always_add_up_to_wall_time(
    log: tuple[list[ClockEvent], datetime], kind: str
) -> None:
    events, now = log
    calendar = AlwaysOn() if kind == "24x7" else WorkingHours()
    f = figures(events, calendar=calendar, now=now)
    parts = f.elapsed_s + f.out_of_hours_s + f.frozen_s + f.planned_works_s + f.stopped_s
    assert abs(parts - f.wall_s) < 1e-6
    assert f.elapsed_s >= 0 and f.out_of_hours_s >= 0
