"""schemathesis against the app's own OpenAPI document: whatever a caller sends, no 5xx, no
status code the document does not list for the operation, no content type it does not list,
and no response that breaks its documented schema."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clocks import ManualClock
from collector.app import create_app
from collector.datadir import DEMO_INVENTORY_DIR
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.inventory.files import load_inventory
from collector.listeners import alarm_engine
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from collector.tickets.flows import TicketAlarmListener
from protocol import AlarmEvent, Severity, Transition
from tests.conftest import budget

INVENTORY = DEMO_INVENTORY_DIR


def _app_with_data() -> tuple[object, str]:
    """An app on a scratch SQLite database with the demo inventory, a NOC user and a ticket."""
    clock = ManualClock()
    engine = make_engine(f"sqlite:///{tempfile.mkdtemp(prefix='sw-openapi-')}/c.db")
    create_schema(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        load_inventory(session, INVENTORY)
        _, token = create_user(session, name="noc", role=Role.NOC, now=clock.now())
        alarm_engine([TicketAlarmListener()]).apply_event(
            session,
            event=AlarmEvent(
                agent_id="agent-1",
                stream_id="0" * 32,
                seq=1,
                ts=clock.now(),
                clock_synced=True,
                site_id="PM-LYO-0101",
                equipment_id="door-main",
                point="contact",
                alarm_type="door_open",
                transition=Transition.RAISED,
                severity=Severity.MAJOR,
            ),
            agent_id="agent-1",
            now=clock.now(),
        )
        session.commit()
    return create_app(session_factory=sessions, clock=clock), token


APP, TOKEN = _app_with_data()
# The live stream holds its connection open by design: it has its own tests.
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/api/v1/stream")


@schema.parametrize()
@settings(
    max_examples=budget(short=10, long=300),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_response_matches_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
