"""What can go wrong with an operator's action on an alarm, as domain errors; the routes map
them to HTTP statuses. Messages are French first, English second, and name the alarm."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from collector.alarms.models import Alarm

_PARIS = ZoneInfo("Europe/Paris")


def _fr(at: datetime) -> str:
    return at.astimezone(_PARIS).strftime("%d/%m/%Y %H:%M (heure de Paris)")


def _en(at: datetime) -> str:
    return at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


def _named(alarm: Alarm) -> tuple[str, str]:
    where = f"{alarm.alarm_type}, {alarm.site_id} {alarm.equipment_id}/{alarm.point}"
    return f"alarme {alarm.id} ({where})", f"alarm {alarm.id} ({where})"


class AlarmNotFound(LookupError):
    """No such alarm, or not one this caller may see."""

    def __init__(self, alarm_id: int) -> None:
        super().__init__(f"alarme {alarm_id} introuvable / alarm {alarm_id} not found")
        self.alarm_id = alarm_id


class AcknowledgementConflict(ValueError):
    """The alarm is not in the acknowledgement state the action needs."""


class AlreadyAcknowledged(AcknowledgementConflict):
    """Acknowledging an alarm someone has already acknowledged: says who, and when."""

    def __init__(self, alarm: Alarm) -> None:
        assert alarm.acknowledged_at is not None
        fr, en = _named(alarm)
        by, at = alarm.acknowledged_by, alarm.acknowledged_at
        super().__init__(
            f"{fr} déjà acquittée par {by} le {_fr(at)} / "
            f"{en} already acknowledged by {by} at {_en(at)}"
        )
        self.alarm_id = alarm.id


class NotAcknowledged(AcknowledgementConflict):
    """Withdrawing the acknowledgement of an alarm nobody has acknowledged."""

    def __init__(self, alarm: Alarm) -> None:
        fr, en = _named(alarm)
        super().__init__(f"{fr} n'est pas acquittée / {en} is not acknowledged")
        self.alarm_id = alarm.id
