"""The edge clock as the agent trusts it: steps seen at once, skew raised as an alarm.

A Pi's wall clock can step: NTP's first sync after boot (expected: the clock was flagged
unsynchronised until then), or a synced clock set by hand or by a bad time server (not
expected). The offset measured against the collector (``agent.link.clockoffset``) follows a
step by itself; without one yet, timestamps taken after an unexpected step are flagged
``clock_synced: false`` until the collector's time has been measured, so the collector falls
back to its receive time rather than trusting a jumped clock (docs/protocol.md, "Time").

Far from the collector's time (beyond ``SKEW_RAISE_S``), the agent raises ``clock_skew`` on
its own ``agent`` pseudo-equipment, through the outbox like any alarm; raised again with its new
value when the skew moves by as much again (a second step), and cleared once back within
``SKEW_CLEAR_S``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from agent.events import AlarmTransition
from agent.link.clockoffset import OffsetEstimator
from clocks import Clock
from protocol import AlarmSnapshot, Severity, Transition

log = logging.getLogger(__name__)

SKEW_RAISE_S = 30.0
SKEW_CLEAR_S = 10.0
CHECK_EVERY_S = 1.0
SKEW_EQUIPMENT = "agent"
SKEW_POINT = "clock"
SKEW_ALARM = "clock_skew"


class ClockWatch:
    """Whether the edge clock may be trusted, its offset, and the ``clock_skew`` alarm."""

    def __init__(
        self,
        *,
        clock: Clock,
        offset: OffsetEstimator,
        kernel_synced: Callable[[], bool],
    ) -> None:
        self._clock = clock
        self.offset = offset
        # Read from the loop and from the MQTT network thread (the Will is built there).
        self._lock = threading.Lock()
        self._kernel_synced = kernel_synced
        self._was_synced = kernel_synced()
        # Stepped while synchronised, with no measure of the collector's time to follow it.
        self._unverified_step = False
        # The skew the raised alarm reports, or None while it is not raised.
        self._reported: float | None = None

    def resume(self, active_alarms: Sequence[AlarmSnapshot]) -> None:
        """Take up a ``clock_skew`` the outbox says is raised (from before a restart)."""
        self._reported = next(
            (
                float(a.value) if isinstance(a.value, int | float) else 0.0
                for a in active_alarms
                if (a.equipment_id, a.point, a.alarm_type)
                == (SKEW_EQUIPMENT, SKEW_POINT, SKEW_ALARM)
            ),
            None,
        )

    @property
    def skew_alarm_active(self) -> bool:
        """Whether ``clock_skew`` is raised."""
        return self._reported is not None

    def clock_synced(self) -> bool:
        """What timestamps taken now say in ``clock_synced``: the kernel's word, unless the
        clock stepped while synchronised and nothing has measured it since."""
        synced = self._look()
        return synced and not self._unverified_step

    def offset_s(self) -> float | None:
        """What messages recorded now carry as ``clock_offset_s``."""
        self._look()
        return self.offset.wire_offset_s()

    def skew_transition(self) -> AlarmTransition | None:
        """A ``clock_skew`` raise or clear when the offset crosses its thresholds, else None."""
        self._look()
        offset = self.offset.offset_s()
        if offset is None:
            return None
        skew = -offset  # how far the edge clock is ahead of the collector's
        reported = self._reported
        if reported is None:
            return self._raise(skew) if abs(skew) > SKEW_RAISE_S else None
        if abs(skew) < SKEW_CLEAR_S:
            self._reported = None
            log.warning("clock back within %.0f s of the collector's (%+.1f s)", SKEW_CLEAR_S, skew)
            return self._alarm(Transition.CLEARED, skew, f"edge clock back to {_words(skew)}")
        if abs(skew) > SKEW_RAISE_S and abs(skew - reported) > SKEW_RAISE_S:
            return self._raise(skew)  # stepped again: the alarm says how far it is now
        return None

    def _raise(self, skew: float) -> AlarmTransition:
        self._reported = skew
        log.error(
            "CLOCK SKEW: this box's clock is %+.1f s off the collector's (alarm %s raised)",
            skew,
            SKEW_ALARM,
        )
        return self._alarm(Transition.RAISED, skew, f"edge clock {_words(skew)}")

    def _look(self) -> bool:
        """Notice a step at once (every reader looks); returns the kernel's sync state."""
        with self._lock:
            return self._look_locked()

    def _look_locked(self) -> bool:
        synced = self._kernel_synced()
        step = self.offset.check_step()
        if step is not None:
            measured = self.offset.offset_s()
            if measured is not None:
                log.warning(
                    "WALL CLOCK STEPPED by %+.1f s; the collector's time is measured: "
                    "collector - edge now %+.1f s",
                    step,
                    measured,
                )
            elif self._was_synced:
                self._unverified_step = True
                log.warning(
                    "WALL CLOCK STEPPED by %+.1f s while synchronised, and the collector's time "
                    "is not measured yet: timestamps are flagged unsynchronised until it is",
                    step,
                )
            else:
                log.info("wall clock set by %+.1f s (synchronisation)", step)
        if self._unverified_step and self.offset.best() is not None:
            self._unverified_step = False
            log.info("clock measured against the collector again: timestamps trusted")
        self._was_synced = synced
        return synced

    def _alarm(self, transition: Transition, skew: float, reason: str) -> AlarmTransition:
        return AlarmTransition(
            equipment_id=SKEW_EQUIPMENT,
            point=SKEW_POINT,
            alarm_type=SKEW_ALARM,
            transition=transition,
            severity=Severity.MINOR,
            value=round(skew, 1),
            reason=reason,
            ts=self._clock.now(),
        )


def _words(skew: float) -> str:
    """``3600.0`` -> "3600 s ahead of the collector's"."""
    side = "ahead of" if skew > 0 else "behind"
    return f"{abs(skew):.0f} s {side} the collector's"
