"""Flapping, root-cause suppression (either order), storms and planned works, end to end in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms.models import Alarm
from collector.identity.access import Principal, Role
from collector.listeners import alarm_engine
from collector.maintenance.service import MaintenanceRefused, WindowRequest, create_window
from collector.scheduler import Scheduler
from collector.tickets.flows import TicketAlarmListener
from collector.tickets.models import Ticket
from collector.tickets.sla import sla_view
from protocol import AlarmEvent, Severity, Transition

NOC = Principal(user_id="noc-1", role=Role.NOC)


@dataclass
class Site:
    """Feeds alarm transitions of many sites through the engine, like ingest does."""

    sessions: sessionmaker[Session]
    clock: ManualClock
    seqs: dict[str, int] = field(default_factory=dict)

    def send(self, site: str, alarm_type: str, transition: Transition, *, point: str = "p") -> None:
        self.seqs[site] = self.seqs.get(site, 0) + 1
        event = AlarmEvent(
            agent_id=site.lower(),
            stream_id="0" * 32,
            seq=self.seqs[site],
            ts=self.clock.now(),
            clock_synced=True,
            site_id=site,
            equipment_id="eq",
            point=point,
            alarm_type=alarm_type,
            transition=transition,
            severity=Severity.MAJOR,
        )
        with self.sessions() as session:
            alarm_engine([TicketAlarmListener()]).apply_event(
                session, event=event, agent_id=site.lower(), now=self.clock.now()
            )
            session.commit()

    def timers(self) -> None:
        with self.sessions() as session:
            Scheduler(
                engine=alarm_engine([TicketAlarmListener()]),
                will_grace_s=60,
                heartbeat_timeout_s=1e9,
            ).run(session, now=self.clock.now())
            session.commit()

    def open_tickets(self) -> list[Ticket]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Ticket)
                    .where(Ticket.state.not_in(["cancelled", "closed"]))
                    .order_by(Ticket.id)
                )
            )

    def alarms(self, **where: object) -> list[Alarm]:
        with self.sessions() as session:
            query = select(Alarm).order_by(Alarm.id)
            for key, value in where.items():
                query = query.where(getattr(Alarm, key) == value)
            return list(session.scalars(query))


@pytest.fixture
def sites(sessions: sessionmaker[Session], clock: ManualClock) -> Site:
    return Site(sessions, clock)


def test_flapping_makes_one_quiet_alarm_that_settles_when_stable(sites: Site) -> None:
    for i in range(10):
        sites.send("PM-1", "door_open", Transition.RAISED if i % 2 == 0 else Transition.CLEARED)
        sites.clock.advance(seconds=10)
    flapping = sites.alarms(alarm_type="door_open", flapping=True)
    assert len(flapping) == 1 and flapping[0].state == "active"
    assert len(sites.open_tickets()) == 1
    sites.clock.advance(seconds=289)
    sites.timers()
    assert sites.alarms(flapping=True)  # not yet stable for the whole window
    sites.clock.advance(seconds=2)
    sites.timers()
    settled = sites.alarms(alarm_type="door_open")[-1]
    assert (settled.flapping, settled.state) == (False, "cleared")  # the edge said clear last


@pytest.mark.parametrize("cause_first", [True, False], ids=["cause-first", "symptom-first"])
def test_suppression_gives_the_same_tickets_whatever_arrives_first(
    sites: Site, cause_first: bool
) -> None:
    order = (
        ["mains_lost", "on_battery", "fire"]
        if cause_first
        else ["on_battery", "fire", "mains_lost"]
    )
    for alarm_type in order:
        sites.send("NRO-1", alarm_type, Transition.RAISED, point=alarm_type)
        sites.clock.advance(seconds=5)
    assert sorted(t.alarm_identity or "" for t in sites.open_tickets()) == [
        "NRO-1/eq/fire/fire",
        "NRO-1/eq/mains_lost/mains_lost",
    ]  # fire is never suppressed; on_battery is a symptom
    symptom = sites.alarms(alarm_type="on_battery")[0]
    assert symptom.suppressed_by == sites.alarms(alarm_type="mains_lost")[0].id
    sites.send("NRO-1", "mains_lost", Transition.CLEARED, point="mains_lost")
    assert sites.alarms(alarm_type="on_battery")[0].state == "cleared"  # closed with its cause


def test_a_regional_cut_opens_one_generic_incident_parent_of_the_site_tickets(sites: Site) -> None:
    for i in range(12):
        sites.send(f"PM-{i:02d}", "mains_lost", Transition.RAISED)
        sites.clock.advance(seconds=10)
    tickets = sites.open_tickets()
    generic = [t for t in tickets if t.kind == "generic_incident"]
    assert len(generic) == 1
    children = [t for t in tickets if t.kind == "curative"]
    assert len(children) == 12
    assert {t.parent_ticket_id for t in children} == {generic[0].id}


@pytest.mark.parametrize("cause_first", [True, False], ids=["causes-first", "symptoms-first"])
def test_a_regional_cut_reported_in_any_order_leaves_one_generic_incident(
    sites: Site, cause_first: bool
) -> None:
    """Twelve sites each lose mains and see their OLT go down (a symptom). Whichever reaches
    the collector first, the NOC is left with one open generic incident: the mains one."""
    order = ["mains_lost", "equipment_down"] if cause_first else ["equipment_down", "mains_lost"]
    for alarm_type in order:
        for i in range(12):
            sites.send(f"PM-{i:02d}", alarm_type, Transition.RAISED, point=alarm_type)
            sites.clock.advance(seconds=2)
    generic = [t for t in sites.open_tickets() if t.kind == "generic_incident"]
    assert [t.title for t in generic] == ["Generic incident: mains_lost at several sites"]
    site_tickets = [t for t in sites.open_tickets() if t.kind == "curative"]
    assert len(site_tickets) == 12
    assert {t.parent_ticket_id for t in site_tickets} == {generic[0].id}


def test_planned_works_mute_the_door_not_the_fire_and_open_tickets_at_the_end(sites: Site) -> None:
    with sites.sessions() as session:
        create_window(
            session,
            request=WindowRequest(
                site_id="PM-1",
                starts_at=sites.clock.now(),
                ends_at=sites.clock.now() + timedelta(hours=2),
                category="third_party",
                hours="HO",
            ),
            principal=NOC,
            now=sites.clock.now(),
        )
        session.commit()
    sites.timers()
    sites.send("PM-1", "door_open", Transition.RAISED, point="door")
    sites.send("PM-1", "fire", Transition.RAISED, point="fire")
    assert [t.alarm_identity for t in sites.open_tickets()] == ["PM-1/eq/fire/fire"]
    assert sites.alarms(alarm_type="door_open")[0].in_maintenance
    sites.clock.advance(hours=2)
    sites.timers()
    assert [t.alarm_identity for t in sites.open_tickets()] == [
        "PM-1/eq/fire/fire",
        "PM-1/eq/door/door_open",
    ]


def test_planned_works_time_is_excluded_from_the_sla(sites: Site) -> None:
    sites.send("PM-2", "hvac_fault", Transition.RAISED)
    sites.clock.advance(hours=1)
    with sites.sessions() as session:
        create_window(
            session,
            request=WindowRequest(
                site_id="PM-2",
                starts_at=sites.clock.now(),
                ends_at=sites.clock.now() + timedelta(hours=3),
                category="third_party",
                hours="HNO",
                client_id="op-alpha",
            ),
            principal=NOC,
            now=sites.clock.now(),
        )
        session.commit()
    sites.timers()
    sites.clock.advance(hours=3)
    sites.timers()
    sites.clock.advance(hours=1)
    with sites.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
        view = sla_view(session, ticket, now=sites.clock.now())
    assert (view.elapsed_min, view.planned_works_min) == (120.0, 180.0)


def test_planned_works_rules(sites: Site, clock: ManualClock) -> None:
    soon = clock.now() + timedelta(days=5)
    with sites.sessions() as session:
        with pytest.raises(
            MaintenanceRefused, match="10 working days' notice; only 4 before 2026-01-10"
        ):
            create_window(
                session,
                request=WindowRequest(
                    site_id="PM-1",
                    starts_at=soon,
                    ends_at=soon + timedelta(hours=1),
                    category="scheduled",
                    hours="HO",
                ),
                principal=NOC,
                now=clock.now(),
            )
        with pytest.raises(MaintenanceRefused, match="client's recorded agreement"):
            create_window(
                session,
                request=WindowRequest(
                    site_id="PM-1",
                    starts_at=soon,
                    ends_at=soon + timedelta(hours=1),
                    category="urgent",
                    hours="HO",
                ),
                principal=NOC,
                now=clock.now(),
            )
        refused = create_window(
            session,
            request=WindowRequest(
                site_id="PM-1",
                starts_at=soon,
                ends_at=soon + timedelta(hours=1),
                category="urgent",
                hours="HNO",
                client_id="op-alpha",
                client_agreement="refused",
            ),
            principal=NOC,
            now=clock.now(),
        )
        assert refused.client_agreement == "refused" and refused.quote_required
