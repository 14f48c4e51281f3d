"""The NOC's open work: tickets by criticality and by time left before their SLA breach,
alarms by severity. Every label value a user may query is shown, at 0 when nothing is open."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.alarms.engine import OPEN_STATES as OPEN_ALARM_STATES
from collector.alarms.models import Alarm
from collector.sla.contracts import load_contracts
from collector.tickets.lifecycle import OPEN_STATES, TicketState
from collector.tickets.models import Ticket
from collector.tickets.sla import OpenDeadline, open_deadlines
from protocol import Severity

# Time-left buckets, by their upper bound in seconds (a ticket goes in the first it is under).
TIME_LEFT_BOUNDS_S = (("lt_15m", 15 * 60), ("lt_1h", 3_600), ("lt_4h", 4 * 3_600))
# breached: past its GTR deadline; frozen: clock paused short of it (waiting for the client,
# planned works); stopped: restored, awaiting closure (its clock no longer runs).
TIME_LEFT_BUCKETS = ("breached", "lt_15m", "lt_1h", "lt_4h", "ge_4h", "frozen", "stopped")
_OPEN = [s.value for s in OPEN_STATES]


def criticalities() -> list[str]:
    """Every criticality level of every contract's profile (the label values always shown)."""
    levels: dict[str, None] = {}
    for profile in load_contracts().criticality_profiles.values():
        levels.update(dict.fromkeys(profile.names()))
    return list(levels)


def tickets(session: Session, *, now: datetime) -> Iterator[GaugeMetricFamily]:
    """Open tickets by criticality, by time left before breach, and past their GTR.

    Cost: two ``GROUP BY`` over the open tickets (``ix_tickets_state``), then one query
    returning the clock log of each open ticket whose clock is not stopped, read over its
    contract's calendar in Python (``sla_view``'s deadline): a loop over open tickets, a few
    hundred at national scale, a few thousand in a storm; never over closed ones.
    """
    levels = criticalities()
    by_state: Counter[tuple[str, str]] = Counter()
    for criticality, state, n in session.execute(
        select(Ticket.criticality, Ticket.state, func.count())
        .where(Ticket.state.in_(_OPEN))
        .group_by(Ticket.criticality, Ticket.state)
    ):
        by_state[(criticality, state)] += n
        if criticality not in levels:
            levels.append(criticality)
    open_tickets = GaugeMetricFamily(
        "shelterwatch_open_tickets",
        "Tickets ouverts par criticité / Open tickets by criticality",
        labels=["criticality"],
    )
    for level in levels:
        open_tickets.add_metric([level], sum(n for (c, _), n in by_state.items() if c == level))
    yield open_tickets

    time_left = Counter(
        (due.criticality, time_left_bucket(due, now=now))
        for due in open_deadlines(session, now=now)
    )
    for (criticality, state), n in by_state.items():
        if state == TicketState.RESTORED.value:
            time_left[(criticality, "stopped")] += n
    family = GaugeMetricFamily(
        "shelterwatch_open_tickets_by_time_left",
        "Tickets ouverts par temps restant avant dépassement de la GTR / Open tickets by time "
        "left before their SLA breach (breached, lt_15m, lt_1h, lt_4h, ge_4h, frozen, stopped)",
        labels=["criticality", "time_left"],
    )
    for level in levels:
        for bucket in TIME_LEFT_BUCKETS:
            family.add_metric([level, bucket], time_left[(level, bucket)])
    yield family

    breached = GaugeMetricFamily(
        "shelterwatch_sla_breached_open_tickets",
        "Tickets ouverts ayant dépassé leur GTR / Open tickets past their GTR",
    )
    breached.add_metric(
        [],
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.sla_breached.is_(True), Ticket.state.in_(_OPEN))
        )
        or 0,
    )
    yield breached


def time_left_bucket(due: OpenDeadline, *, now: datetime) -> str:
    """The bucket of a ticket whose clock runs or is paused: wall time to its deadline."""
    if due.deadline is None:
        return "frozen"
    left_s = (due.deadline - now).total_seconds()
    if left_s < 0:
        return "breached"
    for name, bound_s in TIME_LEFT_BOUNDS_S:
        if left_s < bound_s:
            return name
    return "ge_4h"


def alarms(session: Session) -> Iterator[GaugeMetricFamily]:
    """``shelterwatch_open_alarms{severity,state}``: every severity and open state, 0 included;
    then ``alarm_acknowledgement``. Cost: one ``GROUP BY`` over the open alarms
    (``ix_alarms_state``)."""
    counts: Counter[tuple[str, str]] = Counter()
    for severity, state, n in session.execute(
        select(Alarm.severity, Alarm.state, func.count())
        .where(Alarm.state.in_(OPEN_ALARM_STATES))
        .group_by(Alarm.severity, Alarm.state)
    ):
        counts[(severity, state)] += n
    yield _by_severity(
        "shelterwatch_open_alarms",
        "Alarmes ouvertes par sévérité et état / Open alarms by severity and state",
        ("state", OPEN_ALARM_STATES),
        counts,
    )
    yield from alarm_acknowledgement(session)


def alarm_acknowledgement(session: Session) -> Iterator[GaugeMetricFamily]:
    """``shelterwatch_open_alarms_acknowledged{severity,acknowledged="yes"|"no"}``: open alarms
    an operator has acknowledged, or not yet; every series present, 0 included.
    Cost: one ``GROUP BY`` over the open alarms (``ix_alarms_state``)."""
    counts: Counter[tuple[str, str]] = Counter()
    acknowledged = Alarm.acknowledged_at.is_not(None)
    for severity, is_acknowledged, n in session.execute(
        select(Alarm.severity, acknowledged, func.count())
        .where(Alarm.state.in_(OPEN_ALARM_STATES))
        .group_by(Alarm.severity, acknowledged)
    ):
        counts[(severity, "yes" if is_acknowledged else "no")] += n
    yield _by_severity(
        "shelterwatch_open_alarms_acknowledged",
        "Alarmes ouvertes acquittées ou non / Open alarms acknowledged or not",
        ("acknowledged", ("yes", "no")),
        counts,
    )


def _by_severity(
    name: str,
    documentation: str,
    other: tuple[str, Iterable[str]],
    counts: Counter[tuple[str, str]],
) -> GaugeMetricFamily:
    """A gauge by severity and one other label: every pair of known values at 0 or more, and
    any other pair counted (a severity a rule invented) after them."""
    label, values = other
    keys = [(s.value, value) for s in Severity for value in values]
    keys += sorted(k for k in counts if k not in keys)
    family = GaugeMetricFamily(name, documentation, labels=["severity", label])
    for severity, value in keys:
        family.add_metric([severity, value], counts[(severity, value)])
    return family
