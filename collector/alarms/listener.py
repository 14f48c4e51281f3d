"""How other features (tickets, the live stream) learn of alarm changes, in the same transaction."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy.orm import Session

from collector.alarms.models import Alarm


class AlarmChange(StrEnum):
    """What happened to an alarm."""

    RAISED = "raised"  # a new occurrence opened
    RERAISED = "reraised"  # raised again while open (count + 1)
    SEVERITY_CHANGED = "severity_changed"
    CLEARED = "cleared"
    RECONCILED_CLEAR = "reconciled_clear"  # a birth snapshot says it is no longer active
    UNKNOWN = "unknown"  # the agent became unreachable
    KNOWN_AGAIN = "known_again"  # the agent is back and the alarm is still active
    FLAPPING = "flapping"  # too many transitions: one quiet flapping alarm
    FLAPPING_SETTLED = "flapping_settled"  # stable again for the window, still active
    SUPPRESSED = "suppressed"  # a symptom of an open cause alarm at the site
    STORM_GROUPED = "storm_grouped"  # part of a storm across sites
    MAINTENANCE_ENDED = "maintenance_ended"  # still active when its planned works ended
    TEST_EXPIRED = "test_expired"  # an inspection's test trigger that became a real incident
    # An operator's, not the edge's: the alarm's state and its ticket do not change.
    ACKNOWLEDGED = "acknowledged"  # someone at the NOC has taken it in hand
    UNACKNOWLEDGED = "unacknowledged"  # that acknowledgement withdrawn, with a reason


class AlarmListener(Protocol):
    """Called for every alarm change, in the transaction that made it."""

    def alarm_changed(
        self, session: Session, *, alarm: Alarm, change: AlarmChange, now: datetime
    ) -> None:
        """React to ``change`` of ``alarm``; must not commit."""
        ...
