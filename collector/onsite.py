"""Who is expected at a site, from planned works, inspections and on-site dispatches: the
answer the alarm engine is given when the collector is assembled (``collector.alarms.onsite``
says why the engine does not ask those features itself)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from collector.inspections.models import Inspection
from collector.inspections.service import active_at as active_inspection
from collector.maintenance.models import MaintenanceWindow
from collector.maintenance.service import ACCESS_ALARMS, active_window, authorised_access
from collector.storage import tx_cache
from collector.tickets.models import TicketIntervention

# Built once: building a select costs more Python than running it (see the alarm engine).
_SITES_WITH_WINDOWS = select(MaintenanceWindow.site_id).where(
    MaintenanceWindow.site_id.in_(bindparam("site_ids", expanding=True)),
    MaintenanceWindow.ends_at > bindparam("since"),
)
_SITES_WITH_INSPECTIONS = select(Inspection.site_id).where(
    Inspection.site_id.in_(bindparam("site_ids", expanding=True)),
    Inspection.ends_at > bindparam("since"),
)
_SITES_WITH_DISPATCHES = select(TicketIntervention.site_id).where(
    TicketIntervention.site_id.in_(bindparam("site_ids", expanding=True)),
    TicketIntervention.slot_end > bindparam("since"),
)
_PLANNED = "onsite.planned_presence"


@dataclass(frozen=True)
class _PlannedPresence:
    """Of a batch's sites, those where planned works, an inspection or an on-site dispatch may
    cover an alarm raised at ``since`` or later: anything ending after ``since`` at the site.
    A superset of what the exact lookups find, so only those sites are asked about each raise."""

    sites: frozenset[str]
    since: datetime
    windows: frozenset[str]
    inspections: frozenset[str]
    dispatches: frozenset[str]

    def may_cover(self, kind: str, site_id: str, at: datetime) -> bool:
        if site_id not in self.sites or at < self.since:
            return True  # outside what was looked at: ask
        found: frozenset[str] = getattr(self, kind)
        return site_id in found


class SitePresence:
    """Planned works, inspections and on-site dispatch slots, as the alarm engine asks."""

    def prepare(self, session: Session, *, site_ids: Sequence[str], since: datetime) -> None:
        """Three queries for a batch instead of up to three for each new alarm; the answer is
        kept in the transaction's cache until ``forget``."""
        sites = sorted(set(site_ids))
        params = {"site_ids": sites, "since": since}
        tx_cache(session)[_PLANNED] = _PlannedPresence(
            sites=frozenset(sites),
            since=since,
            windows=frozenset(session.scalars(_SITES_WITH_WINDOWS, params)),
            inspections=frozenset(session.scalars(_SITES_WITH_INSPECTIONS, params)),
            dispatches=frozenset(s for s in session.scalars(_SITES_WITH_DISPATCHES, params) if s),
        )

    def forget(self, session: Session) -> None:
        """No window, inspection or dispatch added after the batch is missed."""
        tx_cache(session).pop(_PLANNED, None)

    def inspected(self, session: Session, *, site_id: str, at: datetime) -> bool:
        planned: _PlannedPresence | None = tx_cache(session).get(_PLANNED)
        if planned is not None and not planned.may_cover("inspections", site_id, at):
            return False
        return active_inspection(session, site_id=site_id, at=at) is not None

    def muted(
        self, session: Session, *, site_id: str, equipment_id: str, alarm_type: str, at: datetime
    ) -> bool:
        """Under planned works, or a door opened by a dispatched technician in their slot."""
        planned: _PlannedPresence | None = tx_cache(session).get(_PLANNED)
        maybe_window = planned is None or planned.may_cover("windows", site_id, at)
        if maybe_window and (
            active_window(
                session, site_id=site_id, equipment_id=equipment_id, alarm_type=alarm_type, at=at
            )
            is not None
        ):
            return True
        if alarm_type not in ACCESS_ALARMS:
            return False
        if planned is not None and not planned.may_cover("dispatches", site_id, at):
            return False
        return authorised_access(session, site_id=site_id, at=at)
