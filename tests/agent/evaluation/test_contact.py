"""A dry contact's debounce and raise/clear delays, at their exact boundaries, on a manual clock.

Time moves in steps exact in binary (``TICK``), so that a boundary is hit exactly."""

from __future__ import annotations

from typing import Any

from agent.evaluation import ContactEvaluator
from clocks import ManualClock
from protocol import Transition
from siteconfig import ContactPoint

TICK = 1 / 64  # 15.625 ms
DEBOUNCE_S = 0.125


def door(**alarm: Any) -> ContactEvaluator:
    """A door contact, closed while the door is shut: the alarm is the door open."""
    spec = ContactPoint.model_validate(
        {
            "debounce_ms": int(DEBOUNCE_S * 1000),
            "alarm": {"alarm_type": "door_open", "severity": "major", "when": "open"} | alarm,
        }
    )
    return ContactEvaluator(equipment_id="contacts", point="door", spec=spec)


def read(ev: ContactEvaluator, clock: ManualClock, *, closed: bool) -> str | None:
    t = ev.feed(closed=closed, now=clock.now(), mono=clock.monotonic())
    return None if t is None else t.transition.value


def test_a_position_counts_once_it_held_for_the_debounce_time(clock: ManualClock) -> None:
    ev = door()
    assert read(ev, clock, closed=True) is None
    assert ev.last_closed is None  # not yet a position: it may still bounce
    clock.advance(seconds=DEBOUNCE_S - TICK)
    assert read(ev, clock, closed=True) is None and ev.last_closed is None
    clock.advance(seconds=TICK)
    assert read(ev, clock, closed=True) is None and ev.last_closed is True
    # The door opens: raised one debounce time after the contact last moved.
    clock.advance(seconds=1)
    assert read(ev, clock, closed=False) is None
    clock.advance(seconds=DEBOUNCE_S - TICK)
    assert read(ev, clock, closed=False) is None
    clock.advance(seconds=TICK)
    assert read(ev, clock, closed=False) == "raised"


def test_bounces_shorter_than_the_debounce_time_raise_nothing(clock: ManualClock) -> None:
    ev = door()
    read(ev, clock, closed=True)
    clock.advance(seconds=1)
    assert read(ev, clock, closed=True) is None
    for _ in range(20):  # a vibrating contact: open and closed for one tick each
        clock.advance(seconds=TICK)
        assert read(ev, clock, closed=False) is None
        clock.advance(seconds=TICK)
        assert read(ev, clock, closed=True) is None
    clock.advance(seconds=10)
    assert read(ev, clock, closed=True) is None
    assert not ev.alarm_active and ev.last_closed is True


def test_the_raise_delay_counts_from_the_moment_the_contact_moved(clock: ManualClock) -> None:
    ev = door(raise_delay_s=2)
    read(ev, clock, closed=True)
    clock.advance(seconds=1)
    read(ev, clock, closed=True)
    assert read(ev, clock, closed=False) is None  # opened now
    clock.advance(seconds=DEBOUNCE_S)
    assert read(ev, clock, closed=False) is None  # debounced, delay running since it moved
    clock.advance(seconds=2 - DEBOUNCE_S - TICK)
    assert read(ev, clock, closed=False) is None
    clock.advance(seconds=TICK)
    assert read(ev, clock, closed=False) == "raised"


def test_a_door_shut_again_within_the_raise_delay_raises_nothing(clock: ManualClock) -> None:
    ev = door(raise_delay_s=2)
    read(ev, clock, closed=True)
    clock.advance(seconds=1)
    read(ev, clock, closed=False)
    clock.advance(seconds=1)
    assert read(ev, clock, closed=False) is None
    assert read(ev, clock, closed=True) is None  # shut before the delay ran out
    clock.advance(seconds=10)
    assert read(ev, clock, closed=True) is None
    assert not ev.alarm_active


def test_the_clear_delay_and_what_a_transition_says(clock: ManualClock) -> None:
    ev = door(clear_delay_s=4)
    read(ev, clock, closed=False)
    clock.advance(seconds=DEBOUNCE_S)
    raised = ev.feed(closed=False, now=clock.now(), mono=clock.monotonic())
    assert raised is not None
    assert (raised.transition, raised.value, raised.reason, raised.ts) == (
        Transition.RAISED,
        False,
        "contact door open",
        clock.now(),
    )
    assert read(ev, clock, closed=True) is None  # shut: the clear delay starts
    clock.advance(seconds=4 - TICK)
    assert read(ev, clock, closed=True) is None
    clock.advance(seconds=TICK)
    cleared = ev.feed(closed=True, now=clock.now(), mono=clock.monotonic())
    assert cleared is not None
    assert (cleared.transition, cleared.value, cleared.reason) == (
        Transition.CLEARED,
        True,
        "contact door closed",
    )


def test_a_fire_relay_alarms_while_closed(clock: ManualClock) -> None:
    spec = ContactPoint.model_validate(
        {
            "debounce_ms": 0,
            "alarm": {"alarm_type": "fire", "severity": "critical", "when": "closed"},
        }
    )
    ev = ContactEvaluator(equipment_id="contacts", point="fire", spec=spec)
    assert read(ev, clock, closed=False) is None
    assert read(ev, clock, closed=True) == "raised"
    assert read(ev, clock, closed=False) == "cleared"
