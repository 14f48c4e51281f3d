"""What sensing hands to the rest of the agent: alarm transitions and telemetry samples.

These carry no envelope (agent id, stream, seq): the runtime adds it when the outbox stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from protocol import Severity, Transition


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """An alarm raised or cleared by edge evaluation."""

    equipment_id: str
    point: str
    alarm_type: str
    transition: Transition
    severity: Severity
    value: float | bool | str | None
    reason: str
    ts: datetime
    test: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    """One telemetry value worth sending (after period and deadband)."""

    equipment_id: str
    point: str
    value: float
    unit: str | None
    ts: datetime


class SensingSink(Protocol):
    """Where sensing delivers its output; implemented by the agent runtime."""

    def transition(self, event: AlarmTransition) -> None:
        """Called for every alarm transition, in the order they happened."""
        ...

    def samples(self, samples: Sequence[Sample]) -> None:
        """Called with the samples of one poll cycle of one device."""
        ...
