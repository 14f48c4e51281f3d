"""Every alarm of every shipped profile has a way to clear, and it works: the walk raises each
alarm type (a contact, a polled value, a trap, the communication failure, the profile
mismatch) through the evaluators on a manual clock, then takes each clear path the profile
offers (a normal value, a clearing trap, the poll of the same point reconciling a trap, an
expiry) and checks the alarm cleared. A profile whose trap raises something nothing clears is
refused at load."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.evaluation import (
    CommEvaluator,
    ContactEvaluator,
    Expiries,
    MeasuredEvaluation,
    ServedEvaluator,
    TrapEvaluator,
    TrapSource,
    Unmapped,
    alarm_identities,
)
from agent.evaluation.comm import ALARM_TYPE as COMM_ALARM
from agent.evaluation.served import ALARM_TYPE as MISMATCH_ALARM
from agent.events import AlarmTransition
from agent.sensors.observations import SNMP_TRAP_OID, TrapNotification
from clocks import ManualClock
from protocol import Transition
from siteconfig import (
    BitAlarm,
    ConfigError,
    EqualsAlarm,
    GpioProfile,
    ModbusPoint,
    Profile,
    SnmpDevice,
    SnmpPoint,
    SnmpProfile,
    ThresholdAlarm,
    load_profile,
    load_profile_text,
)

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"
SHIPPED = sorted(PROFILES.glob("*.yaml"))
Key = tuple[str, str]  # point, alarm type


def _bad(point: SnmpPoint | ModbusPoint) -> float | bool:
    alarm = point.alarm
    if isinstance(alarm, ThresholdAlarm):
        return alarm.raise_at + (1 if alarm.direction == "above" else -1)
    if isinstance(alarm, BitAlarm):
        return alarm.when
    assert isinstance(alarm, EqualsAlarm)
    return float(alarm.equals[0])


def _good(point: SnmpPoint | ModbusPoint) -> float | bool:
    alarm = point.alarm
    if isinstance(alarm, ThresholdAlarm):
        return alarm.clear_at - (1 if alarm.direction == "above" else -1)
    if isinstance(alarm, BitAlarm):
        return not alarm.when
    assert isinstance(alarm, EqualsAlarm)
    return float(min(set(range(100)) - set(alarm.equals)))


def _reading(profile: SnmpProfile | Profile, name: str, value: float | bool) -> dict[str, object]:
    """One poll: ``name`` at ``value``, the condition of its ``only_if`` met (row 1 of a table)."""
    point = profile.points[name]
    assert isinstance(point, SnmpPoint | ModbusPoint)
    row = ".1" if isinstance(point, SnmpPoint) and point.table else ""
    out: dict[str, object] = {f"{name}{row}": value}
    alarm = point.alarm
    if isinstance(alarm, EqualsAlarm) and alarm.only_if is not None:
        out[f"{alarm.only_if.point}{row}"] = float(alarm.only_if.equals[0])
    return out


class Walk:
    """What was raised and cleared for one profile."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.clock = ManualClock()
        self.raised: set[Key] = set()
        self.cleared: set[Key] = set()
        self.paths: dict[Key, list[str]] = {}

    def saw(
        self, t: AlarmTransition | None, *, key: Key, transition: Transition, path: str
    ) -> None:
        assert t is not None, f"{key}: no {transition.value} ({path})"
        assert (t.point.split(".")[0], t.alarm_type, t.transition) == (*key, transition), path
        (self.raised if transition is Transition.RAISED else self.cleared).add(key)
        if transition is Transition.CLEARED:
            self.paths.setdefault(key, []).append(path)

    def poll(
        self, evaluation: MeasuredEvaluation, name: str, value: float | bool, *, mono: float,
        active: set[Key] | None = None,
    ) -> list[AlarmTransition]:  # fmt: skip
        reading = _reading(self.profile, name, value)
        out = evaluation.feed(reading, now=self.clock.now(), mono=mono, active=active)  # type: ignore[arg-type]
        return [t for t in out.transitions if t.point.split(".")[0] == name]


def _walk_contacts(walk: Walk, profile: GpioProfile) -> None:
    for name, spec in profile.points.items():
        key = (name, spec.alarm.alarm_type)
        ev = ContactEvaluator(equipment_id="dev", point=name, spec=spec)
        bad = spec.alarm.when == "closed"
        settle = spec.debounce_ms / 1000 + spec.alarm.raise_delay_s
        ev.feed(closed=bad, now=walk.clock.now(), mono=0.0)
        walk.saw(
            ev.feed(closed=bad, now=walk.clock.now(), mono=settle),
            key=key, transition=Transition.RAISED, path="contact",
        )  # fmt: skip
        after = settle + spec.debounce_ms / 1000 + spec.alarm.clear_delay_s
        ev.feed(closed=not bad, now=walk.clock.now(), mono=settle + 0.001)
        walk.saw(
            ev.feed(closed=not bad, now=walk.clock.now(), mono=after + 0.001),
            key=key, transition=Transition.CLEARED, path="contact back to normal",
        )  # fmt: skip


def _raise_by_poll(walk: Walk, name: str) -> tuple[MeasuredEvaluation, float]:
    point = walk.profile.points[name]
    assert isinstance(point, SnmpPoint | ModbusPoint) and point.alarm is not None
    evaluation = MeasuredEvaluation(equipment_id="dev", points=walk.profile.points)  # type: ignore[arg-type]
    delay = point.alarm.raise_delay_s
    # Raised at once without a delay, or on the first poll once the delay has passed.
    first = walk.poll(evaluation, name, _bad(point), mono=0.0)
    raised = first or walk.poll(evaluation, name, _bad(point), mono=delay)
    walk.saw(
        raised[0] if raised else None,
        key=(name, point.alarm.alarm_type), transition=Transition.RAISED, path="poll",
    )  # fmt: skip
    return evaluation, delay


def _clear_by_poll(
    walk: Walk, evaluation: MeasuredEvaluation, name: str, *, mono: float, path: str,
    active: set[Key] | None = None,
) -> None:  # fmt: skip
    point = walk.profile.points[name]
    assert isinstance(point, SnmpPoint | ModbusPoint) and point.alarm is not None
    delay = point.alarm.clear_delay_s
    first = walk.poll(evaluation, name, _good(point), mono=mono, active=active)
    cleared = first or walk.poll(evaluation, name, _good(point), mono=mono + delay)
    walk.saw(
        cleared[0] if cleared else None,
        key=(name, point.alarm.alarm_type), transition=Transition.CLEARED, path=path,
    )  # fmt: skip


def _walk_points(walk: Walk) -> None:
    for name, point in walk.profile.points.items():
        if not isinstance(point, SnmpPoint | ModbusPoint) or point.alarm is None:
            continue
        evaluation, delay = _raise_by_poll(walk, name)
        _clear_by_poll(walk, evaluation, name, mono=delay + 1, path="value back to normal")


def _walk_traps(walk: Walk, profile: SnmpProfile) -> None:
    device = SnmpDevice.model_validate(
        {
            "driver": "snmp",
            "id": "dev",
            "profile": profile.name,
            "host": "192.0.2.1",
            "auth": {"version": "v2c", "community": "public"},
        }
    )
    traps = TrapEvaluator([TrapSource(device=device, profile=profile)])

    def hear(index: int) -> AlarmTransition:
        trap = profile.traps[index]
        binds = [(SNMP_TRAP_OID, trap.trap_oid)]
        if trap.varbind_oid is not None and trap.varbind_equals is not None:
            binds.append((f"{trap.varbind_oid}.1", trap.varbind_equals))
        heard = traps.feed(
            TrapNotification(host="192.0.2.1", var_binds=tuple(binds)), now=walk.clock.now()
        )
        assert not isinstance(heard, Unmapped), heard.reason
        return heard

    for index, trap in enumerate(profile.traps):
        if trap.transition != "raised":
            continue
        key = (trap.point, trap.alarm_type)
        walk.saw(hear(index), key=key, transition=Transition.RAISED, path="trap")
        for other, clearing in enumerate(profile.traps):
            if (clearing.point, clearing.alarm_type, clearing.transition) == (*key, "cleared"):
                walk.saw(hear(other), key=key, transition=Transition.CLEARED, path="clearing trap")
        polled = profile.points.get(trap.point)
        if polled is not None and polled.alarm and polled.alarm.alarm_type == trap.alarm_type:
            # The poller's evaluator never saw the trap: the poll adopts the active state.
            evaluation = MeasuredEvaluation(equipment_id="dev", points=profile.points)
            _clear_by_poll(
                walk, evaluation, trap.point, mono=0.0, active={key},
                path="poll of the same point",
            )  # fmt: skip
        if trap.expire_s is not None:
            expiries = Expiries()
            expiries.follow(hear(index), expire_s=trap.expire_s, mono=0.0)
            assert expiries.expired(mono=trap.expire_s - 0.001, now=walk.clock.now()) == []
            [expired] = expiries.expired(mono=trap.expire_s, now=walk.clock.now())
            walk.saw(expired, key=key, transition=Transition.CLEARED, path="expiry")


def _walk_device(walk: Walk) -> None:
    comm = CommEvaluator(equipment_id="dev", failures_to_raise=1)
    key = ("comm", COMM_ALARM)
    walk.saw(
        comm.failed(reason="x", now=walk.clock.now()), key=key, transition=Transition.RAISED,
        path="no answer",
    )  # fmt: skip
    walk.saw(
        comm.answered(now=walk.clock.now()), key=key, transition=Transition.CLEARED,
        path="an answer",
    )  # fmt: skip
    points = walk.profile.points
    required = [n for n, p in points.items() if getattr(p, "required", False)]
    if required:
        served = ServedEvaluator(equipment_id="dev", points=points)  # type: ignore[arg-type]
        key = ("profile", MISMATCH_ALARM)
        now = walk.clock.now()
        walk.saw(
            served.feed(required[:1], now=now), key=key, transition=Transition.RAISED,
            path="a required point missing",
        )  # fmt: skip
        walk.saw(
            served.feed([], now=now), key=key, transition=Transition.CLEARED,
            path="every required point served",
        )  # fmt: skip


@pytest.fixture(params=SHIPPED, ids=[p.stem for p in SHIPPED])
def walk(request: pytest.FixtureRequest) -> Iterator[Walk]:
    yield Walk(load_profile(request.param))


def test_every_alarm_of_a_shipped_profile_raises_and_clears(walk: Walk) -> None:
    profile = walk.profile
    if isinstance(profile, GpioProfile):
        _walk_contacts(walk, profile)
    else:
        _walk_points(walk)
        _walk_device(walk)
    if isinstance(profile, SnmpProfile):
        _walk_traps(walk, profile)
    expected = alarm_identities(profile)
    assert walk.raised == expected
    assert walk.cleared == expected, f"never cleared: {expected - walk.cleared}"


def test_the_ups_on_battery_trap_is_cleared_by_its_clearing_trap_and_by_the_poll() -> None:
    walk = Walk(load_profile(PROFILES / "snmp-ups-mib.yaml"))
    assert isinstance(walk.profile, SnmpProfile)
    _walk_traps(walk, walk.profile)
    assert set(walk.paths[("output_source", "on_battery")]) == {
        "clearing trap",
        "poll of the same point",
    }


def test_a_trap_raising_what_nothing_clears_is_refused() -> None:
    text = """
name: broken
kind: snmp
points:
  load: {oid: 1.3.6.1.4.1.9.1.0}
traps:
  - {trap_oid: 1.3.6.1.4.1.9.2.1, alarm_type: overload, severity: major, transition: raised,
     point: load}
"""
    with pytest.raises(ConfigError) as err:
        load_profile_text(text, source="broken.yaml")
    assert "traps[0] raises overload on load, which nothing clears" in str(err.value)
    fixed = load_profile_text(
        text.replace("point: load}", "point: load, expire_s: 600}"), source="broken.yaml"
    )
    assert isinstance(fixed, SnmpProfile) and fixed.traps[0].expire_s == 600


def test_an_expiring_alarm_raised_again_waits_from_the_last_notice() -> None:
    clock = ManualClock()
    raised = AlarmTransition(
        equipment_id="router-1", point="fan", alarm_type="fan_failure",
        transition=Transition.RAISED, severity="major", value=None, reason="x", ts=clock.now(),
    )  # type: ignore[arg-type]  # fmt: skip
    expiries = Expiries()
    expiries.follow(raised, expire_s=60, mono=0.0)
    expiries.follow(raised, expire_s=60, mono=50.0)
    assert expiries.expired(mono=60.0, now=clock.now()) == []
    assert expiries.next_due() == 110.0
    [cleared] = expiries.expired(mono=110.0, now=clock.now())
    assert cleared.transition is Transition.CLEARED and "expired" in cleared.reason
    expiries.follow(raised, expire_s=60, mono=200.0)
    expiries.follow(dataclasses.replace(raised, transition=Transition.CLEARED), expire_s=None,
                    mono=210.0)  # fmt: skip
    assert expiries.next_due() is None
