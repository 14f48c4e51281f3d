"""Syslog messages to alarm transitions, through the site's patterns. Pure, time passed in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from agent.events import AlarmTransition
from agent.sensors.observations import SyslogMessage
from protocol import Transition
from siteconfig import SyslogPattern


class SyslogEvaluator:
    """Configured patterns -> alarm transitions."""

    def __init__(self, patterns: Sequence[SyslogPattern]) -> None:
        self._patterns = [(p, re.compile(p.regex)) for p in patterns]

    def expire_s(self, transition: AlarmTransition) -> float | None:
        """How long after it an alarm a pattern raised clears by itself, if it does."""
        key = (transition.equipment_id, transition.point, transition.alarm_type)
        return max(
            (
                p.expire_s
                for p, _ in self._patterns
                if (p.equipment, p.point, p.alarm_type) == key and p.expire_s is not None
            ),
            default=None,
        )

    def feed(self, message: SyslogMessage, *, now: datetime) -> list[AlarmTransition]:
        """One transition per pattern the message matches, in the patterns' order."""
        out = []
        for pattern, regex in self._patterns:
            if pattern.host is not None and pattern.host != message.hostname:
                continue
            if regex.search(message.message) is None:
                continue
            out.append(
                AlarmTransition(
                    equipment_id=pattern.equipment,
                    point=pattern.point,
                    alarm_type=pattern.alarm_type,
                    transition=Transition(pattern.transition),
                    severity=pattern.severity,
                    value=None,
                    reason=f"syslog {message.hostname or '?'}: {message.message}"[:500],
                    ts=now,
                )
            )
        return out
