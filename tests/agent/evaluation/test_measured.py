"""A measured device's readings through its profile: evaluators built per point and per table
row, counters as rates, telemetry samples, and the communication-failure alarm; on a manual
clock."""

from __future__ import annotations

import pytest

from agent.evaluation import CommEvaluator, MeasuredEvaluation
from clocks import ManualClock
from siteconfig import ModbusProfile, SnmpProfile

ENV = ModbusProfile.model_validate(
    {
        "name": "env",
        "kind": "modbus",
        "points": {
            "temperature": {
                "function": 3,
                "address": 0,
                "unit": "degC",
                "telemetry": {"period_s": 300, "deadband": 0.5},
                "alarm": {
                    "alarm_type": "temp_high",
                    "severity": "major",
                    "direction": "above",
                    "raise_at": 35.0,
                    "clear_at": 32.0,
                },
            },
            "humidity": {
                "function": 3,
                "address": 1,
                "unit": "%",
                "telemetry": {"period_s": 300, "deadband": 2.0},
            },
            "door": {"function": 2, "address": 0, "type": "bool"},
        },
    }
)
IF_MIB = SnmpProfile.model_validate(
    {
        "name": "if",
        "kind": "snmp",
        "points": {
            "descr": {"oid": "1.3.6.1.2.1.2.2.1.2", "type": "string", "table": True},
            "admin_status": {"oid": "1.3.6.1.2.1.2.2.1.7", "table": True},
            "oper_status": {
                "oid": "1.3.6.1.2.1.2.2.1.8",
                "table": True,
                "alarm": {
                    "alarm_type": "interface_down",
                    "severity": "major",
                    "equals": [2, 7],
                    "only_if": {"point": "admin_status", "equals": [1]},
                },
            },
            "in_bits": {
                "oid": "1.3.6.1.2.1.31.1.1.1.6",
                "type": "counter",
                "table": True,
                "rate": True,
                "unit": "bit/s",
                "telemetry": {"period_s": 300, "deadband": 1000},
            },
        },
    }
)


def test_a_poll_gives_its_transitions_and_the_samples_worth_sending(clock: ManualClock) -> None:
    env = MeasuredEvaluation(equipment_id="env-1", points=ENV.points)
    first = env.feed(
        {"temperature": 23.4, "humidity": 45.0, "door": True}, now=clock.now(), mono=0.0
    )
    assert first.transitions == []
    # Every value with telemetry goes the first time; a bit carries none.
    assert [(s.equipment_id, s.point, s.value, s.unit, s.ts) for s in first.samples] == [
        ("env-1", "temperature", 23.4, "degC", clock.now()),
        ("env-1", "humidity", 45.0, "%", clock.now()),
    ]
    clock.advance(seconds=10)
    hot = env.feed(
        {"temperature": 36.0, "humidity": 45.0, "door": True}, now=clock.now(), mono=10.0
    )
    assert [(t.point, t.alarm_type, t.transition.value) for t in hot.transitions] == [
        ("temperature", "temp_high", "raised")
    ]
    # Temperature moved past its deadband; humidity neither moved nor is due.
    assert [s.point for s in hot.samples] == ["temperature"]
    assert env.values == {"temperature": 36.0, "humidity": 45.0, "door": True}


def test_a_point_with_an_alarm_active_at_start_clears_on_its_first_normal_value(
    clock: ManualClock,
) -> None:
    env = MeasuredEvaluation(equipment_id="env-1", points=ENV.points, active_points={"temperature"})
    assert env.feed({"temperature": 33.0}, now=clock.now(), mono=0.0).transitions == []
    normal = env.feed({"temperature": 21.0}, now=clock.now(), mono=1.0)
    assert [(t.alarm_type, t.transition.value) for t in normal.transitions] == [
        ("temp_high", "cleared")
    ]


def test_table_rows_mean_what_their_column_means_and_counters_become_rates(
    clock: ManualClock,
) -> None:
    olt = MeasuredEvaluation(equipment_id="olt-1", points=IF_MIB.points)
    rows = {
        "descr.1": "ge-0/0/1",
        "admin_status.1": 1,
        "oper_status.1": 2,
        "in_bits.1": 8_000.0,
        "admin_status.2": 2,
        "oper_status.2": 2,
    }
    first = olt.feed(rows, now=clock.now(), mono=100.0)
    # A counter's first read gives no rate; text is no measure.
    assert "in_bits.1" not in first.values and "descr.1" not in first.values
    # Row 1 is down while administratively up; row 2 was shut on purpose.
    assert [(t.point, t.transition.value, t.value) for t in first.transitions] == [
        ("oper_status.1", "raised", 2)
    ]
    second = olt.feed(rows | {"in_bits.1": 24_000.0}, now=clock.now(), mono=102.0)
    assert second.values["in_bits.1"] == pytest.approx(8_000.0)  # 16,000 over 2 s
    assert [(s.point, s.value, s.unit) for s in second.samples] == [("in_bits.1", 8_000.0, "bit/s")]
    # A counter that went backwards (wrapped, rebooted) gives no value this time...
    wrapped = olt.feed(rows | {"in_bits.1": 100.0}, now=clock.now(), mono=104.0)
    assert "in_bits.1" not in wrapped.values
    # ... and counts from there.
    again = olt.feed(rows | {"in_bits.1": 4_100.0}, now=clock.now(), mono=106.0)
    assert again.values["in_bits.1"] == pytest.approx(2_000.0)


def test_comm_failure_after_exactly_so_many_failed_polls_cleared_by_an_answer(
    clock: ManualClock,
) -> None:
    comm = CommEvaluator(equipment_id="env-1", failures_to_raise=3)
    assert comm.failed(reason="no answer within 2.0 s", now=clock.now()) is None
    assert comm.failed(reason="no answer within 2.0 s", now=clock.now()) is None
    raised = comm.failed(reason="no answer within 2.0 s", now=clock.now())
    assert raised is not None
    assert (raised.point, raised.alarm_type, raised.transition.value, raised.reason) == (
        "comm",
        "comm_failure",
        "raised",
        "device env-1: no answer within 2.0 s",
    )
    assert comm.failed(reason="still nothing", now=clock.now()) is None  # raised once
    clock.advance(minutes=3)
    cleared = comm.answered(now=clock.now())
    assert cleared is not None and (cleared.transition.value, cleared.reason, cleared.ts) == (
        "cleared",
        "device env-1: answering again",
        clock.now(),
    )
    assert comm.answered(now=clock.now()) is None
    # An answer in between starts the count again.
    comm.failed(reason="x", now=clock.now())
    comm.failed(reason="x", now=clock.now())
    comm.answered(now=clock.now())
    assert comm.failed(reason="x", now=clock.now()) is None
