"""What the broker owes the agent: when its silence means a dead link, how much telemetry may be
on its way, and what paho will send again by itself."""

from __future__ import annotations

import pytest

from agent.link.wire import MAX_TELEMETRY_BYTES, MIN_TELEMETRY_BYTES, DeliveryRate, Wire


def _wire() -> Wire:
    wire = Wire(answer_timeout_s=15.0, queue_s=1.0)
    wire.connecting(0.0)
    wire.connected(0.1)
    return wire


def test_a_connect_without_connack_is_dead_at_the_timeout() -> None:
    wire = Wire(answer_timeout_s=15.0, queue_s=1.0)
    wire.connecting(100.0)
    assert wire.dead(114.9) is None
    assert wire.dead(115.0) == "no CONNACK within 15 s"
    wire.connected(110.0)
    assert wire.dead(200.0) is None  # answered, and nothing else is owed


def test_the_oldest_unanswered_publish_decides_and_a_puback_clears_it() -> None:
    wire = _wire()
    wire.sent(1, key=("event", 1), size=400, telemetry=False, now=10.0)
    wire.sent(2, key=None, size=900, telemetry=False, now=12.0)  # a heartbeat
    assert wire.dead(24.9) is None
    assert wire.dead(25.0) == "no PUBACK within 15 s (2 publishes unanswered)"
    wire.answered(1, 20.0)
    assert wire.dead(26.9) is None  # the heartbeat has waited 14.9 s
    assert wire.dead(27.0) is not None
    wire.answered(2, 21.0)
    assert wire.dead(1000.0) is None


def test_what_waits_over_a_disconnection_is_resent_by_paho_and_timed_from_then() -> None:
    wire = _wire()
    wire.sent(7, key=("event", 3), size=400, telemetry=False, now=10.0)
    wire.disconnected()
    assert wire.dead(60.0) is None  # no connection, nothing to drop
    assert wire.awaiting(("event", 3))  # paho still holds it: the link must not send it
    wire.connecting(60.0)
    wire.connected(61.0)
    assert wire.dead(75.9) is None
    assert wire.dead(76.0) is not None
    wire.answered(7, 62.0)
    assert not wire.awaiting(("event", 3))


def test_a_new_paho_client_holds_nothing() -> None:
    wire = _wire()
    wire.sent(1, key=("telemetry", 9), size=1200, telemetry=True, now=1.0)
    wire.reset()
    assert not wire.awaiting(("telemetry", 9))
    assert wire.telemetry_bytes == 0 and wire.unanswered == 0


def test_telemetry_on_its_way_is_about_one_second_of_the_measured_throughput() -> None:
    wire = _wire()
    assert wire.telemetry_budget(1.0) == MIN_TELEMETRY_BYTES  # nothing measured yet
    # A 64 kbit/s link: 8,000 bytes acknowledged a second while the queue stays full.
    now = 1.0
    for mid in range(1, 40):
        wire.sent(mid, key=("telemetry", mid), size=1000, telemetry=True, now=now)
    assert wire.telemetry_bytes == 39_000
    for mid in range(1, 40):
        now += 0.125
        wire.answered(mid, now)
    assert wire.telemetry_bytes == 0
    assert wire.telemetry_budget(now) == pytest.approx(8000, rel=0.02)


def test_the_budget_has_a_ceiling_and_forgets_old_measures() -> None:
    wire = _wire()
    wire.sent(1, key=("telemetry", 1), size=500_000, telemetry=True, now=1.0)
    wire.answered(1, 1.01)  # 50 MB/s on loopback
    assert wire.telemetry_budget(1.01) == MAX_TELEMETRY_BYTES
    assert wire.telemetry_budget(20.0) == MIN_TELEMETRY_BYTES  # five seconds on, unmeasured


def test_a_publish_resent_after_a_reconnect_measures_nothing() -> None:
    wire = _wire()
    wire.sent(1, key=("telemetry", 1), size=8000, telemetry=True, now=1.0)
    wire.disconnected()
    wire.connecting(30.0)
    wire.connected(30.0)
    wire.answered(1, 30.001)  # would read as 8 MB/s
    assert wire.rate.value(30.001) is None


def test_the_delivery_rate_is_the_best_sample_of_its_window() -> None:
    rate = DeliveryRate(window_s=5.0)
    rate.add(0.0, 100.0)
    rate.add(1.0, 300.0)
    rate.add(2.0, 200.0)
    assert rate.value(2.0) == 300.0
    assert rate.value(6.5) == 200.0  # the 300 of t=1 is out of the window
    assert rate.value(7.5) is None
