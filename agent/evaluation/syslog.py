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
    """Configured patterns -> alarm transitions. A pattern matches a message when its ``host``
    is the message's hostname or sender address, its ``tag`` is found in the program name or
    the Cisco tag, and its ``regex`` in the message (a Cisco tag included: the message reads
    "%LINK-3-UPDOWN: Interface ...")."""

    def __init__(self, patterns: Sequence[SyslogPattern]) -> None:
        self._patterns = [(p, re.compile(p.regex)) for p in patterns]
        self._tags = [re.compile(p.tag) if p.tag is not None else None for p in patterns]

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
        tags = [t for t in (message.app, message.mnemonic) if t is not None]
        for (pattern, regex), tag in zip(self._patterns, self._tags, strict=True):
            if pattern.host is not None and pattern.host not in (message.hostname, message.address):
                continue
            if tag is not None and not any(tag.search(t) for t in tags):
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
                    reason=f"syslog {message.hostname or message.address or '?'}:"
                    f" {message.message}"[:500],
                    ts=now,
                )
            )
        return out
