"""Full-jitter exponential backoff, so thousands of agents do not reconnect in step."""

from __future__ import annotations

import random


class FullJitterBackoff:
    """Delay n is uniform in [0, min(cap, base * 2**n)] (AWS "full jitter"), at least ``floor``."""

    def __init__(self, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        self._base = base_s
        self._cap = cap_s
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self._cap, self._base * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 30)
        # A small floor keeps a flapping broker from being hammered with zero-delay retries.
        return max(self._base / 10, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        """After a successful connection."""
        self._attempt = 0
