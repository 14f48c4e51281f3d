"""Who is expected on site is given to the alarm engine: the collector's answer (planned works,
inspections, dispatches) mutes a door during planned works; an engine told nobody is expected
opens a ticket for the same door. A batch's look-up never outlives the batch."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clocks import ManualClock
from collector.alarms import AlarmEngine
from collector.alarms.models import Alarm
from collector.alarms.onsite import NobodyExpected
from collector.identity.access import Principal, Role
from collector.listeners import alarm_engine
from collector.maintenance.service import WindowRequest, create_window
from collector.onsite import SitePresence
from collector.tickets.flows import TicketAlarmListener
from collector.tickets.models import Ticket
from protocol import AlarmEvent, Severity, Transition

NOC = Principal(user_id="noc-1", role=Role.NOC)


def _plan_works(sessions: sessionmaker[Session], clock: ManualClock, site_id: str) -> None:
    with sessions() as session:
        create_window(
            session,
            request=WindowRequest(
                site_id=site_id,
                starts_at=clock.now(),
                ends_at=clock.now() + timedelta(hours=2),
                category="third_party",
                hours="HO",
            ),
            principal=NOC,
            now=clock.now(),
        )
        session.commit()


def _door_opens(
    sessions: sessionmaker[Session], clock: ManualClock, engine: AlarmEngine, site_id: str
) -> tuple[bool, int]:
    """The door alarm's ``in_maintenance`` and how many tickets the site has."""
    event = AlarmEvent(
        agent_id=site_id.lower(),
        stream_id="0" * 32,
        seq=1,
        ts=clock.now(),
        clock_synced=True,
        site_id=site_id,
        equipment_id="eq",
        point="door",
        alarm_type="door_open",
        transition=Transition.RAISED,
        severity=Severity.MAJOR,
    )
    with sessions() as session:
        engine.apply_event(session, event=event, agent_id=site_id.lower(), now=clock.now())
        session.commit()
        alarm = session.scalars(select(Alarm).where(Alarm.site_id == site_id)).one()
        tickets = session.scalars(select(Ticket).where(Ticket.site_id == site_id)).all()
        return alarm.in_maintenance, len(tickets)


def test_the_engine_mutes_only_what_its_on_site_answer_says(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    _plan_works(sessions, clock, "PM-1")
    _plan_works(sessions, clock, "PM-2")
    collectors = alarm_engine([TicketAlarmListener()])
    told_nobody = AlarmEngine([TicketAlarmListener()], on_site=NobodyExpected())
    assert _door_opens(sessions, clock, collectors, "PM-1") == (True, 0)
    assert _door_opens(sessions, clock, told_nobody, "PM-2") == (False, 1)


def test_a_batch_look_up_is_forgotten_when_the_batch_ends(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    presence = SitePresence()
    at = clock.now()

    def muted(session: Session) -> bool:
        return presence.muted(
            session, site_id="PM-1", equipment_id="eq", alarm_type="door_open", at=at
        )

    with sessions() as session:
        presence.prepare(session, site_ids=["PM-1"], since=at)
        assert not muted(session)  # nothing planned when the batch was looked up
        presence.forget(session)
    _plan_works(sessions, clock, "PM-1")
    with sessions() as session:
        assert muted(session)  # the next batch sees the works
        presence.prepare(session, site_ids=["PM-1"], since=at)
        assert muted(session)
        presence.forget(session)
