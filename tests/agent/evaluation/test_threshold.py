"""Thresholds with hysteresis and raise/clear delays, bits, enumerated values and the telemetry
gate, at their exact boundaries, on a manual clock.

Time moves in steps exact in binary (``TICK``): "just before" a delay is one tick before it,
and the boundary itself is hit exactly, not a rounding error away."""

from __future__ import annotations

from typing import Any

import pytest

from agent.evaluation import BitEvaluator, EqualsEvaluator, TelemetryGate, ThresholdEvaluator
from agent.events import AlarmTransition
from clocks import ManualClock
from protocol import Severity, Transition
from siteconfig import BitAlarm, EqualsAlarm, Telemetry, ThresholdAlarm

TICK = 1 / 64  # 15.625 ms


def threshold(**kw: Any) -> ThresholdEvaluator:
    alarm = ThresholdAlarm.model_validate(
        {"alarm_type": "temp_high", "severity": "major", "direction": "above"}
        | {"raise_at": 35.0, "clear_at": 32.0}
        | kw
    )
    return ThresholdEvaluator(equipment_id="env-1", point="temperature", alarm=alarm)


def feed(ev: ThresholdEvaluator, clock: ManualClock, value: float) -> str | None:
    t = ev.feed(value=value, now=clock.now(), mono=clock.monotonic())
    return None if t is None else t.transition.value


def test_above_raises_at_the_threshold_and_clears_only_past_the_hysteresis_bound(
    clock: ManualClock,
) -> None:
    ev = threshold()
    assert [feed(ev, clock, v) for v in (34.99, 35.0)] == [None, "raised"]
    # The band between the two bounds holds the alarm, however long it lasts.
    assert [feed(ev, clock, v) for v in (36.0, 32.01, 34.0, 32.01)] == [None] * 4
    clock.advance(hours=24)
    assert feed(ev, clock, 32.01) is None
    assert feed(ev, clock, 32.0) == "cleared"
    # Once cleared, the band does not raise again: only the threshold does.
    assert [feed(ev, clock, v) for v in (34.99, 33.0, 35.0)] == [None, None, "raised"]


def test_below_is_the_mirror_image(clock: ManualClock) -> None:
    ev = threshold(alarm_type="temp_low", direction="below", raise_at=5.0, clear_at=8.0)
    assert [feed(ev, clock, v) for v in (5.01, 5.0, 7.99, 6.0, 8.0)] == [
        None,
        "raised",
        None,
        None,
        "cleared",
    ]


def test_the_raise_delay_counts_from_the_first_reading_past_the_threshold(
    clock: ManualClock,
) -> None:
    ev = threshold(raise_delay_s=60)
    assert feed(ev, clock, 36.0) is None
    clock.advance(seconds=60 - TICK)
    assert feed(ev, clock, 36.0) is None
    clock.advance(seconds=TICK)
    assert feed(ev, clock, 36.0) == "raised"


def test_a_reading_back_under_the_threshold_starts_the_raise_delay_again(
    clock: ManualClock,
) -> None:
    ev = threshold(raise_delay_s=60)
    feed(ev, clock, 36.0)
    clock.advance(seconds=50)
    assert feed(ev, clock, 34.0) is None  # a dip: the delay starts over
    clock.advance(seconds=10)
    assert feed(ev, clock, 36.0) is None  # 60 s after the first reading, but not in a row
    clock.advance(seconds=59)
    assert feed(ev, clock, 36.0) is None
    clock.advance(seconds=1)
    assert feed(ev, clock, 36.0) == "raised"


def test_the_clear_delay_counts_from_the_first_reading_past_the_clear_bound(
    clock: ManualClock,
) -> None:
    ev = threshold(clear_delay_s=300)
    assert feed(ev, clock, 40.0) == "raised"
    assert feed(ev, clock, 31.0) is None
    clock.advance(seconds=200)
    assert feed(ev, clock, 33.0) is None  # back in the band: the clear delay starts over
    clock.advance(seconds=100)
    assert feed(ev, clock, 31.0) is None
    clock.advance(seconds=300 - TICK)
    assert feed(ev, clock, 31.0) is None
    clock.advance(seconds=TICK)
    assert feed(ev, clock, 31.0) == "cleared"


def test_a_transition_says_what_crossed_which_bound_when(clock: ManualClock) -> None:
    ev = threshold()
    raised = ev.feed(value=35.5, now=clock.now(), mono=clock.monotonic())
    assert raised is not None
    assert (raised.equipment_id, raised.point, raised.alarm_type) == (
        "env-1",
        "temperature",
        "temp_high",
    )
    assert (raised.transition, raised.severity, raised.value, raised.ts) == (
        Transition.RAISED,
        Severity.MAJOR,
        35.5,
        clock.now(),
    )
    assert raised.reason == "temperature = 35.5, above 35"
    clock.advance(minutes=5)
    cleared = ev.feed(value=31.0, now=clock.now(), mono=clock.monotonic())
    assert cleared is not None
    assert (cleared.transition, cleared.reason, cleared.ts) == (
        Transition.CLEARED,
        "temperature = 31, back past 32",
        clock.now(),
    )


def test_an_alarm_active_at_start_clears_on_a_normal_value(clock: ManualClock) -> None:
    alarm = ThresholdAlarm(
        alarm_type="temp_high", severity="major", direction="above", raise_at=35, clear_at=32
    )
    ev = ThresholdEvaluator(equipment_id="e", point="t", alarm=alarm, alarm_active=True)
    assert feed(ev, clock, 33.0) is None
    assert feed(ev, clock, 20.0) == "cleared"


@pytest.mark.parametrize(("when", "alarming"), [(True, True), (False, False)])
def test_a_bit_alarm_with_its_delays(clock: ManualClock, when: bool, alarming: bool) -> None:
    alarm = BitAlarm(
        alarm_type="mains_lost", severity="major", when=when, raise_delay_s=5, clear_delay_s=10
    )
    ev = BitEvaluator(equipment_id="power-1", point="mains", alarm=alarm)

    def bit(value: bool) -> str | None:
        t = ev.feed(value=value, now=clock.now(), mono=clock.monotonic())
        return None if t is None else t.transition.value

    assert bit(alarming) is None
    clock.advance(seconds=5 - TICK)
    assert bit(alarming) is None
    clock.advance(seconds=TICK)
    assert bit(alarming) == "raised"
    assert bit(not alarming) is None
    clock.advance(seconds=10 - TICK)
    assert bit(not alarming) is None
    clock.advance(seconds=TICK)
    assert bit(not alarming) == "cleared"


def test_an_enumerated_value_only_while_its_row_is_administratively_up(
    clock: ManualClock,
) -> None:
    alarm = EqualsAlarm.model_validate(
        {
            "alarm_type": "interface_down",
            "severity": "major",
            "equals": [2, 7],
            "raise_delay_s": 30,
            "only_if": {"point": "admin_status", "equals": [1]},
        }
    )
    ev = EqualsEvaluator(equipment_id="olt-1", point="oper_status.3", alarm=alarm)

    def oper(value: float, admin: float | None) -> AlarmTransition | None:
        row = {"oper_status.3": value} | ({} if admin is None else {"admin_status.3": admin})
        # Another row's admin status does not count.
        row["admin_status.4"] = 1
        return ev.feed(value=value, values=row, now=clock.now(), mono=clock.monotonic())

    assert oper(2, admin=2) is None  # shut on purpose: down is no alarm
    clock.advance(seconds=60)
    assert oper(2, admin=2) is None
    assert oper(2, admin=None) is None  # no admin status in this poll: no alarm either
    assert oper(7, admin=1) is None  # up administratively and down: the delay starts
    clock.advance(seconds=30 - TICK)
    assert oper(2, admin=1) is None
    clock.advance(seconds=TICK)
    raised = oper(2, admin=1)
    # The enumerated value itself, not the truth of "is one of".
    assert raised is not None and (raised.transition.value, raised.value) == ("raised", 2)
    cleared = oper(1, admin=1)
    assert cleared is not None and (cleared.transition.value, cleared.value) == ("cleared", 1)


def test_telemetry_goes_when_due_or_moved_past_the_deadband(clock: ManualClock) -> None:
    gate = TelemetryGate(Telemetry(period_s=60, deadband=0.5))

    def admit(value: float) -> bool:
        return gate.admit(value, mono=clock.monotonic())

    assert admit(21.0)  # the first value always goes
    clock.advance(seconds=10)
    assert not admit(21.5)  # moved by the deadband exactly: not past it
    assert not admit(20.5)
    assert admit(21.51)  # past it: sent, and the new reference
    clock.advance(seconds=60 - TICK)
    assert not admit(21.6)
    clock.advance(seconds=TICK)
    assert admit(21.6)  # the period since the last one sent
