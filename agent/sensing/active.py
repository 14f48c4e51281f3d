"""The alarms sensing has raised and not yet cleared."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agent.events import AlarmTransition, Sample, SensingSink
from protocol import AlarmSnapshot, Severity, Transition

Identity = tuple[str, str, str]  # equipment, point, alarm type


class ActiveAlarms:
    """What a poller's evaluators start from: the alarms active when the agent started (from
    its outbox), then every transition sensing emitted since. A poller restarted by a reload
    or by the supervisor thus starts raised where the alarm is, and a return to normal clears
    it."""

    def __init__(self, initial: Iterable[AlarmSnapshot] = ()) -> None:
        self._active: dict[Identity, Severity] = {
            (a.equipment_id, a.point, a.alarm_type): a.severity for a in initial
        }

    def items(self) -> list[tuple[Identity, Severity]]:
        """Each active alarm and its severity."""
        return list(self._active.items())

    def __contains__(self, identity: Identity) -> bool:
        return identity in self._active

    def alarms_of(self, equipment_id: str) -> set[tuple[str, str]]:
        """The (point, alarm type) pairs of one equipment with an alarm active."""
        return {(point, kind) for e, point, kind in self._active if e == equipment_id}

    def points_of(self, equipment_id: str) -> set[str]:
        """The points of one equipment with an alarm active."""
        return {point for e, point, _ in self._active if e == equipment_id}

    def note(self, event: AlarmTransition) -> None:
        """Follow one transition."""
        identity = (event.equipment_id, event.point, event.alarm_type)
        if event.transition is Transition.RAISED:
            self._active[identity] = event.severity
        else:
            self._active.pop(identity, None)


class TrackingSink:
    """A sink that keeps ``ActiveAlarms`` up to date on its way to the agent's sink."""

    def __init__(self, sink: SensingSink, active: ActiveAlarms) -> None:
        self._sink = sink
        self._active = active

    def transition(self, event: AlarmTransition) -> None:
        """Noted, then passed on."""
        self._active.note(event)
        self._sink.transition(event)

    def samples(self, samples: Sequence[Sample]) -> None:
        """Passed on."""
        self._sink.samples(samples)
