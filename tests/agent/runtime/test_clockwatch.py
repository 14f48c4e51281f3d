"""The clock the agent trusts: an unmeasured step of a synced clock is flagged, NTP's own first
step is not, and clock_skew is raised and cleared with hysteresis."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from agent.link.clockoffset import OffsetEstimator
from agent.runtime.clockwatch import SKEW_CLEAR_S, SKEW_RAISE_S, ClockWatch
from clocks import ManualClock
from protocol import AlarmSnapshot, Severity, Transition


def _measure(estimator: OffsetEstimator, clock: ManualClock, *, ahead_s: float) -> None:
    """One clean round trip saying the collector is ``ahead_s`` ahead of this box's clock."""
    sent = clock.monotonic()
    stamped = clock.now() + timedelta(seconds=0.05 + ahead_s)
    clock.advance(seconds=0.1)
    estimator.add(sent_mono=sent, received_mono=clock.monotonic(), collector_ts=stamped)


class _Probe:
    def __init__(self, synced: bool) -> None:
        self.synced = synced

    def __call__(self) -> bool:
        return self.synced


def test_a_synced_clock_stepped_before_any_measure_is_flagged_until_one_comes(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    estimator = OffsetEstimator(clock)
    watch = ClockWatch(clock=clock, offset=estimator, kernel_synced=_Probe(True))
    assert watch.clock_synced() and watch.offset_s() is None
    with caplog.at_level(logging.WARNING):
        clock.step_wall(3600)
        # The very next timestamp is flagged: the collector takes its receive time instead.
        assert not watch.clock_synced()
    assert "WALL CLOCK STEPPED by +3600.0 s while synchronised" in caplog.text
    assert watch.offset_s() is None
    _measure(estimator, clock, ahead_s=-3600)
    assert watch.clock_synced()
    assert watch.offset_s() == pytest.approx(-3600)


def test_the_step_of_ntp_synchronising_an_unsynced_clock_is_no_jump(clock: ManualClock) -> None:
    probe = _Probe(False)
    watch = ClockWatch(clock=clock, offset=OffsetEstimator(clock), kernel_synced=probe)
    assert not watch.clock_synced()
    clock.step_wall(-7200)  # fake-hwclock's saved time, then NTP's answer
    probe.synced = True
    assert watch.clock_synced()


def test_a_step_with_a_measure_is_followed_at_once(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    estimator = OffsetEstimator(clock)
    watch = ClockWatch(clock=clock, offset=estimator, kernel_synced=_Probe(True))
    _measure(estimator, clock, ahead_s=0)
    with caplog.at_level(logging.WARNING):
        clock.step_wall(-600)
        assert watch.clock_synced()
        assert watch.offset_s() == pytest.approx(600)
    assert "WALL CLOCK STEPPED by -600.0 s" in caplog.text


def test_clock_skew_is_raised_beyond_its_threshold_and_cleared_well_within_it(
    clock: ManualClock,
) -> None:
    estimator = OffsetEstimator(clock)
    watch = ClockWatch(clock=clock, offset=estimator, kernel_synced=_Probe(True))
    assert watch.skew_transition() is None  # nothing measured: nothing said
    _measure(estimator, clock, ahead_s=-(SKEW_RAISE_S - 1))
    assert watch.skew_transition() is None
    clock.step_wall(3600)
    raised = watch.skew_transition()
    assert raised is not None and raised.transition is Transition.RAISED
    assert (raised.equipment_id, raised.point, raised.alarm_type) == (
        "agent",
        "clock",
        "clock_skew",
    )
    assert raised.severity is Severity.MINOR
    assert raised.value == pytest.approx(3600 + SKEW_RAISE_S - 1, abs=0.1)
    assert raised.reason.startswith("edge clock 3629 s ahead of the collector's")
    assert watch.skew_transition() is None  # raised once
    clock.step_wall(-3600 - (SKEW_RAISE_S - 1) + (SKEW_CLEAR_S + 1))
    assert watch.skew_transition() is None  # between the thresholds: still raised
    clock.step_wall(-7)  # 4 s ahead
    cleared = watch.skew_transition()
    assert cleared is not None and cleared.transition is Transition.CLEARED
    assert watch.skew_transition() is None


def test_a_second_step_raises_clock_skew_again_with_how_far_it_is_now(
    clock: ManualClock,
) -> None:
    estimator = OffsetEstimator(clock)
    watch = ClockWatch(clock=clock, offset=estimator, kernel_synced=_Probe(True))
    _measure(estimator, clock, ahead_s=0)
    clock.step_wall(3600)
    assert watch.skew_transition() is not None
    clock.step_wall(5)  # drifting a little further says nothing new
    assert watch.skew_transition() is None
    clock.step_wall(-4205)
    again = watch.skew_transition()
    assert again is not None and again.transition is Transition.RAISED
    assert again.value == pytest.approx(-600, abs=0.1)
    assert again.reason == "edge clock 600 s behind the collector's"


def test_a_restarted_agent_clears_the_clock_skew_its_outbox_says_is_active(
    clock: ManualClock,
) -> None:
    estimator = OffsetEstimator(clock)
    active = AlarmSnapshot(
        equipment_id="agent",
        point="clock",
        alarm_type="clock_skew",
        severity=Severity.MINOR,
        value=3600.0,
        since=clock.now(),
    )
    watch = ClockWatch(clock=clock, offset=estimator, kernel_synced=_Probe(True))
    watch.resume([active])
    _measure(estimator, clock, ahead_s=-3600)
    assert watch.skew_transition() is None  # still what it reported: not raised again
    clock.step_wall(-3600)
    cleared = watch.skew_transition()
    assert cleared is not None and cleared.transition is Transition.CLEARED
