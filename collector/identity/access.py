"""Who is calling and what they may do: roles, the permission table, principals.

``PERMISSIONS`` is the one place that says which role may do what. Every API route names its
action (``collector.identity.deps.requires``); services ask the same table where the answer
depends on the data (which lifecycle move a transition is: ``collector.tickets.permissions``;
whose dispatch an intervention is). What a client may see is ``collector.identity.scope``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Who is calling."""

    NOC = "noc"  # NOC operator: everything
    CLIENT = "client"  # a hosted operator: only its own services and tickets
    TECHNICIAN = "technician"  # field technician: its own dispatches and inspections; reads
    VIEWER = "viewer"  # read-only
    MONITORING = "monitoring"  # a Prometheus scraper: /metrics and nothing else


class Grant(StrEnum):
    """How far a role may do an action."""

    NO = "no"
    ALL = "all"
    # A client: on its own services, sites and tickets (the client scoping of every query).
    # A technician: on the tickets it is dispatched to (an intervention names it) and on the
    # inspections it runs (the inspection names it).
    OWN = "own"


class Action(StrEnum):
    """What a caller does; each API route does exactly one."""

    ME_READ = "me.read"
    INVENTORY_READ = "inventory.read"
    INVENTORY_EDIT = "inventory.edit"
    CLIENT_READ = "client.read"
    ESCALATION_EDIT = "escalation.edit"
    ALARM_READ = "alarm.read"
    ALARM_ACKNOWLEDGE = "alarm.acknowledge"
    ALARM_UNACKNOWLEDGE = "alarm.unacknowledge"
    TICKET_READ = "ticket.read"
    TICKET_OPEN = "ticket.open"
    TICKET_TRANSITION = "ticket.transition"
    # One action per lifecycle move (TRANSITION_ACTIONS): the transition route checks both.
    TICKET_QUALIFY = "ticket.qualify"
    TICKET_START = "ticket.start"
    TICKET_ASK_CLIENT = "ticket.ask_client"
    TICKET_RESUME = "ticket.resume"
    TICKET_RESTORE = "ticket.restore"
    TICKET_CONFIRM_CLOSE = "ticket.confirm_close"
    TICKET_REOPEN = "ticket.reopen"
    TICKET_CANCEL = "ticket.cancel"
    TICKET_ESCALATE = "ticket.escalate"
    TICKET_RESUPERVISE = "ticket.resupervise"
    TICKET_CONTRACT = "ticket.contract"
    TICKET_UPDATE = "ticket.update"
    INTERVENTION_ADD = "intervention.add"
    PROBLEM_READ = "problem.read"
    PROBLEM_EDIT = "problem.edit"
    MAINTENANCE_READ = "maintenance.read"
    MAINTENANCE_PLAN = "maintenance.plan"
    INSPECTION_READ = "inspection.read"
    INSPECTION_START = "inspection.start"
    INSPECTION_COMPLETE = "inspection.complete"
    REPORT_MONTHLY = "report.monthly"
    REPORT_OPERATIONS = "report.operations"
    STREAM_READ = "stream.read"
    METRICS_READ = "metrics.read"
    AGENT_ENROL = "agent.enrol"
    INGEST_READ = "ingest.read"
    INGEST_DECIDE = "ingest.decide"


COLUMNS = (Role.NOC, Role.CLIENT, Role.TECHNICIAN, Role.VIEWER, Role.MONITORING)
NO, ALL, OWN = Grant.NO, Grant.ALL, Grant.OWN

# fmt: off
PERMISSIONS: dict[Action, tuple[Grant, ...]] = {
    #                               noc   client  technician  viewer  monitoring
    Action.ME_READ:                 (ALL,  ALL,    ALL,        ALL,    NO),
    # Sites, equipment, agents, telemetry, services: a technician diagnoses on site.
    Action.INVENTORY_READ:          (ALL,  OWN,    ALL,        ALL,    NO),
    # Sites, equipment, clients, services.
    Action.INVENTORY_EDIT:          (ALL,  NO,     NO,         NO,     NO),
    # Clients and their escalation contacts (names, phones): no field need for a technician.
    Action.CLIENT_READ:             (ALL,  OWN,    NO,         ALL,    NO),
    Action.ESCALATION_EDIT:         (ALL,  NO,     NO,         NO,     NO),
    Action.ALARM_READ:              (ALL,  OWN,    ALL,        ALL,    NO),
    # "Seen, on it": the NOC's desk work. A client follows its ticket; a technician on site
    # reports through its dispatch, not by silencing the NOC's screen.
    Action.ALARM_ACKNOWLEDGE:       (ALL,  NO,     NO,         NO,     NO),
    # Taking an acknowledgement back (with a reason): the same desk.
    Action.ALARM_UNACKNOWLEDGE:     (ALL,  NO,     NO,         NO,     NO),
    # Tickets and the urgent desk's queue.
    Action.TICKET_READ:             (ALL,  OWN,    ALL,        ALL,    NO),
    # Declare a ticket (SAV) or an urgent request, on the client's own services only.
    Action.TICKET_OPEN:             (ALL,  OWN,    NO,         NO,     NO),
    # The route; which move a client may make is the move's own row below.
    Action.TICKET_TRANSITION:       (ALL,  OWN,    NO,         NO,     NO),
    # opened -> qualified
    Action.TICKET_QUALIFY:          (ALL,  NO,     NO,         NO,     NO),
    # qualified -> in_progress
    Action.TICKET_START:            (ALL,  NO,     NO,         NO,     NO),
    # in_progress -> waiting_client
    Action.TICKET_ASK_CLIENT:       (ALL,  NO,     NO,         NO,     NO),
    # waiting_client -> in_progress: the client answers the NOC's question.
    Action.TICKET_RESUME:           (ALL,  OWN,    NO,         NO,     NO),
    # in_progress -> restored, with the restoration notice (its own route).
    Action.TICKET_RESTORE:          (ALL,  NO,     NO,         NO,     NO),
    # restored -> closed: the client confirms (or the 48 h auto-close, which is no caller).
    Action.TICKET_CONFIRM_CLOSE:    (ALL,  OWN,    NO,         NO,     NO),
    # restored -> in_progress: the client refuses the restoration.
    Action.TICKET_REOPEN:           (ALL,  OWN,    NO,         NO,     NO),
    # any open state -> cancelled
    Action.TICKET_CANCEL:           (ALL,  NO,     NO,         NO,     NO),
    Action.TICKET_ESCALATE:         (ALL,  NO,     NO,         NO,     NO),
    Action.TICKET_RESUPERVISE:      (ALL,  NO,     NO,         NO,     NO),
    Action.TICKET_CONTRACT:         (ALL,  NO,     NO,         NO,     NO),
    # Progress updates: a client's messages on its tickets, a technician's from its dispatch.
    Action.TICKET_UPDATE:           (ALL,  OWN,    OWN,        NO,     NO),
    # A technician records what it did on a ticket it is dispatched to, in its own name.
    Action.INTERVENTION_ADD:        (ALL,  NO,     OWN,        NO,     NO),
    Action.PROBLEM_READ:            (ALL,  OWN,    ALL,        ALL,    NO),
    Action.PROBLEM_EDIT:            (ALL,  NO,     NO,         NO,     NO),
    Action.MAINTENANCE_READ:        (ALL,  OWN,    ALL,        ALL,    NO),
    Action.MAINTENANCE_PLAN:        (ALL,  NO,     NO,         NO,     NO),
    Action.INSPECTION_READ:         (ALL,  OWN,    ALL,        ALL,    NO),
    # A technician starts inspections in its own name, and completes those naming it.
    Action.INSPECTION_START:        (ALL,  NO,     OWN,        NO,     NO),
    Action.INSPECTION_COMPLETE:     (ALL,  NO,     OWN,        NO,     NO),
    # Penalties in euros: the client's and the NOC's business, not the field's.
    Action.REPORT_MONTHLY:          (ALL,  OWN,    NO,         ALL,    NO),
    Action.REPORT_OPERATIONS:       (ALL,  OWN,    ALL,        ALL,    NO),
    Action.STREAM_READ:             (ALL,  OWN,    ALL,        ALL,    NO),
    # Fleet-wide counts: never a client's; Prometheus scrapes with a monitoring token.
    Action.METRICS_READ:            (ALL,  NO,     NO,         ALL,    ALL),
    # Bind an agent to the one site it may speak for: who may speak for a site is the NOC's.
    Action.AGENT_ENROL:             (ALL,  NO,     NO,         NO,     NO),
    # Dead letters, unenrolled agents, quarantined streams: what boxes sent, any site's.
    Action.INGEST_READ:             (ALL,  NO,     NO,         ALL,    NO),
    # Release a quarantined stream or skip the event it failed on.
    Action.INGEST_DECIDE:           (ALL,  NO,     NO,         NO,     NO),
}
# fmt: on


def _check_table() -> None:
    """The table is complete and means one thing: only clients and technicians have OWN."""
    missing = set(Action) - set(PERMISSIONS)
    if missing:
        raise AssertionError(f"actions without a row in PERMISSIONS: {sorted(missing)}")
    for action, row in PERMISSIONS.items():
        if len(row) != len(COLUMNS):
            raise AssertionError(f"{action}: one grant per role {COLUMNS}")
        for role, grant in zip(COLUMNS, row, strict=True):
            if grant is Grant.OWN and role not in (Role.CLIENT, Role.TECHNICIAN):
                raise AssertionError(f"{action}: {role} has no 'own' data")


_check_table()


class Forbidden(PermissionError):
    """The caller's role may not do this (the permission table says so)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller; ``client_id`` is set for (and only for) clients."""

    user_id: str
    role: Role
    client_id: str | None = None

    @property
    def is_client(self) -> bool:
        """True for a client, whose every read is scoped to its own data."""
        return self.role is Role.CLIENT

    @property
    def is_technician(self) -> bool:
        """True for a field technician, who acts only on its own dispatches and inspections."""
        return self.role is Role.TECHNICIAN


def grant(role: Role, action: Action) -> Grant:
    """What the table gives ``role`` for ``action``."""
    return PERMISSIONS[action][COLUMNS.index(role)]


def require(principal: Principal, action: Action) -> Grant:
    """The caller's grant for ``action``; raises ``Forbidden`` when it is NO.

    ``OWN`` obliges the caller of ``require`` to keep to the caller's own objects."""
    given = grant(principal.role, action)
    if given is Grant.NO:
        raise Forbidden(f"the {principal.role.value} role may not do {action.value}")
    return given
