"""The clock offset measured on acks' round trips: midpoint, the 2 s discard, the best of the
window, a wall-clock step, and acks that are no round trip at all."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agent.link.clockoffset import (
    MAX_RTT_S,
    SESSION_GUARD_S,
    SPACING_S,
    WINDOW_S,
    OffsetEstimator,
)
from clocks import ManualClock

# The collector's clock runs this far ahead of the box's in these tests.
AHEAD_S = 5.0


def _collector_time(clock: ManualClock, *, at_mono: float) -> datetime:
    """The collector's time when the box's monotonic clock read ``at_mono``."""
    return clock.now() + timedelta(seconds=at_mono - clock.monotonic() + AHEAD_S)


def _round_trip(
    estimator: OffsetEstimator,
    clock: ManualClock,
    *,
    rtt_s: float,
    commit_at: float = 0.5,
) -> object:
    """Publish now, the collector stamps its ack ``commit_at`` of the way, back after rtt_s."""
    sent = clock.monotonic()
    stamped = _collector_time(clock, at_mono=sent + commit_at * rtt_s)
    clock.advance(seconds=rtt_s)
    return estimator.add(sent_mono=sent, received_mono=clock.monotonic(), collector_ts=stamped)


def test_the_collector_time_is_placed_at_the_midpoint_of_the_round_trip(
    clock: ManualClock,
) -> None:
    estimator = OffsetEstimator(clock)
    assert estimator.offset_s() is None and estimator.wire_offset_s() is None
    _round_trip(estimator, clock, rtt_s=0.4)
    assert estimator.offset_s() == pytest.approx(AHEAD_S)
    assert estimator.wire_offset_s() == AHEAD_S
    clock.advance(minutes=3)  # it holds between samples
    assert estimator.offset_s() == pytest.approx(AHEAD_S)


def test_an_uneven_round_trip_is_wrong_by_at_most_half_of_it(clock: ManualClock) -> None:
    estimator = OffsetEstimator(clock)
    _round_trip(estimator, clock, rtt_s=1.0, commit_at=0.95)  # the ack came straight back
    assert estimator.offset_s() == pytest.approx(AHEAD_S + 0.45)


def test_a_round_trip_over_two_seconds_is_discarded(clock: ManualClock) -> None:
    estimator = OffsetEstimator(clock)
    assert _round_trip(estimator, clock, rtt_s=MAX_RTT_S + 0.1) is None
    assert estimator.offset_s() is None and estimator.discarded == 1
    _round_trip(estimator, clock, rtt_s=0.2)
    clock.advance(seconds=SPACING_S)
    # A heartbeat-like delay (80 s on the way) would read as 40 s of skew: never taken.
    assert _round_trip(estimator, clock, rtt_s=80.0, commit_at=1.0) is None
    assert estimator.offset_s() == pytest.approx(AHEAD_S)


def test_the_smallest_round_trip_of_the_window_is_the_estimate(clock: ManualClock) -> None:
    estimator = OffsetEstimator(clock)
    _round_trip(estimator, clock, rtt_s=0.1)
    clock.advance(seconds=SPACING_S)
    _round_trip(estimator, clock, rtt_s=1.8, commit_at=1.0)  # 0.9 s wrong
    assert estimator.offset_s() == pytest.approx(AHEAD_S)
    # Once the good sample is out of the window, the better of the newer ones counts.
    clock.advance(seconds=WINDOW_S)
    _round_trip(estimator, clock, rtt_s=1.0, commit_at=1.0)
    assert estimator.offset_s() == pytest.approx(AHEAD_S + 0.5)
    assert estimator.wire_offset_s() == pytest.approx(AHEAD_S + 0.5)


def test_an_offset_within_half_the_round_trip_is_sent_as_zero(clock: ManualClock) -> None:
    estimator = OffsetEstimator(clock)
    sent = clock.monotonic()
    stamped = _collector_time(clock, at_mono=sent + 0.2) - timedelta(seconds=AHEAD_S - 0.1)
    clock.advance(seconds=0.4)
    estimator.add(sent_mono=sent, received_mono=clock.monotonic(), collector_ts=stamped)
    assert estimator.offset_s() == pytest.approx(0.1)
    assert estimator.wire_offset_s() == 0.0  # an NTP-synced clock keeps its own precision


@pytest.mark.parametrize("step_s", [3600.0, -600.0])
def test_a_wall_clock_step_moves_the_offset_at_once_and_is_seen(
    clock: ManualClock, step_s: float
) -> None:
    estimator = OffsetEstimator(clock)
    _round_trip(estimator, clock, rtt_s=0.2)
    assert estimator.check_step() is None
    clock.step_wall(step_s)
    assert estimator.offset_s() == pytest.approx(AHEAD_S - step_s)  # no new sample needed
    assert estimator.check_step() == pytest.approx(step_s)
    assert estimator.check_step() is None  # seen once
    clock.advance(seconds=SPACING_S)
    _round_trip(estimator, clock, rtt_s=0.3)  # samples after the step agree with it
    assert estimator.offset_s() == pytest.approx(AHEAD_S - step_s)


def test_only_acks_of_messages_published_once_are_round_trips(clock: ManualClock) -> None:
    estimator = OffsetEstimator(clock)
    estimator.session_started()
    clock.advance(seconds=SESSION_GUARD_S)
    estimator.published(("event", 1), clock.monotonic())
    estimator.published(("event", 1), clock.monotonic() + 0.1)  # re-sent: which copy is acked?
    stamped = _collector_time(clock, at_mono=clock.monotonic() + 0.2)
    clock.advance(seconds=0.3)
    sample = estimator.acked([("event", 1)], received_mono=clock.monotonic(), collector_ts=stamped)
    assert sample is None and estimator.offset_s() is None
    # An ack naming nothing this process published (a heartbeat has no ack) is none either.
    assert estimator.acked([], received_mono=clock.monotonic(), collector_ts=stamped) is None

    estimator.published(("event", 2), clock.monotonic())
    estimator.published(("telemetry", 7), clock.monotonic() + 0.1)
    stamped = _collector_time(clock, at_mono=clock.monotonic() + 0.2)
    clock.advance(seconds=0.3)
    sample = estimator.acked(
        [("event", 2), ("telemetry", 7)], received_mono=clock.monotonic(), collector_ts=stamped
    )
    # The round trip runs from the latest publish the ack covers.
    assert sample is not None and sample.rtt_s == pytest.approx(0.2)
    assert estimator.offset_s() == pytest.approx(AHEAD_S)


def test_acks_of_the_first_seconds_of_a_session_are_not_sampled(clock: ManualClock) -> None:
    # They may have waited at the broker for the session to come back.
    estimator = OffsetEstimator(clock)
    estimator.session_started()
    estimator.published(("event", 1), clock.monotonic())
    stale = clock.now() - timedelta(seconds=30)
    clock.advance(seconds=0.1)
    assert estimator.acked([("event", 1)], received_mono=clock.monotonic(), collector_ts=stale) is (
        None
    )
    assert estimator.offset_s() is None
