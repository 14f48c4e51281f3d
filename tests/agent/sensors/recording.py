"""What the sensing service emitted, recorded for the driver tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from agent.events import AlarmTransition, Sample


class RecordingSink:
    """Alarm transitions and telemetry samples, as the sensing service emitted them."""

    def __init__(self) -> None:
        self.transitions: list[AlarmTransition] = []
        self.batches: list[Sample] = []

    def transition(self, event: AlarmTransition) -> None:
        self.transitions.append(event)

    def samples(self, samples: Sequence[Sample]) -> None:
        self.batches.extend(samples)

    def of(self, alarm_type: str) -> list[str]:
        """The transitions ("raised", "cleared") of one alarm type, in order."""
        return [t.transition.value for t in self.transitions if t.alarm_type == alarm_type]

    def by_point(self, alarm_type: str) -> list[tuple[str, str]]:
        """(point, transition) of one alarm type, in order."""
        return [
            (t.point, t.transition.value) for t in self.transitions if t.alarm_type == alarm_type
        ]


async def until(predicate: Callable[[], object], limit_s: float = 10.0) -> None:
    """Wait for ``predicate`` to hold, or fail after ``limit_s``."""
    for _ in range(int(limit_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")
