"""Who is expected at a site when an alarm is raised there: the question the alarm engine asks
about each new alarm, and only its shape.

An inspection running at the site makes its triggers test results; planned works covering the
equipment, or a door opened by a technician dispatched there in their slot, mute the alarm
(recorded, no ticket). Planned works, inspections and dispatches are features above the alarm
engine, so the answer is given to the engine when the collector is assembled
(``collector.onsite.SitePresence``, wired by ``collector.listeners.alarm_engine``): the engine
imports none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session


class OnSite(Protocol):
    """Answers, inside the engine's transaction, whether anyone is expected on a site."""

    def prepare(self, session: Session, *, site_ids: Sequence[str], since: datetime) -> None:
        """A batch will raise alarms at these sites at ``since`` or later: look them up at once
        (a storm raises thousands at sites where nobody is expected)."""

    def forget(self, session: Session) -> None:
        """The batch is over: what ``prepare`` learnt must not outlive it."""

    def inspected(self, session: Session, *, site_id: str, at: datetime) -> bool:
        """An inspection runs at the site at ``at``: a trigger is a test result."""

    def muted(
        self, session: Session, *, site_id: str, equipment_id: str, alarm_type: str, at: datetime
    ) -> bool:
        """Planned works cover the alarm, or it is a door opened by a dispatched technician."""


class NobodyExpected:
    """Nobody is ever expected: every alarm is an incident. For engines that apply events
    without planned works, inspections or dispatches (a benchmark of the bare alarm path)."""

    def prepare(self, session: Session, *, site_ids: Sequence[str], since: datetime) -> None:
        return None

    def forget(self, session: Session) -> None:
        return None

    def inspected(self, session: Session, *, site_id: str, at: datetime) -> bool:
        return False

    def muted(
        self, session: Session, *, site_id: str, equipment_id: str, alarm_type: str, at: datetime
    ) -> bool:
        return False
