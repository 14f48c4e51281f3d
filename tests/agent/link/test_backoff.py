"""Reconnect delays are full-jitter: spread over [0, cap], so agents never reconnect in step."""

from __future__ import annotations

import random

from agent.link import FullJitterBackoff


def test_delays_grow_to_the_cap_and_are_spread_not_synchronised() -> None:
    backoffs = [
        FullJitterBackoff(base_s=1.0, cap_s=120.0, rng=random.Random(i)) for i in range(500)
    ]
    for _ in range(10):  # ceiling reaches min(120, 2**9) = 120
        delays = [b.next_delay() for b in backoffs]
    assert max(delays) <= 120.0
    assert min(delays) >= 0.1
    # Full jitter: the tenth retries of 500 agents spread over the whole window.
    assert sum(d < 40 for d in delays) > 100
    assert sum(d > 80 for d in delays) > 100


def test_first_delay_is_at_most_the_base_and_reset_starts_over() -> None:
    backoff = FullJitterBackoff(base_s=1.0, cap_s=120.0, rng=random.Random(1))
    assert backoff.next_delay() <= 1.0
    for _ in range(20):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 1.0
