"""The alarm engine: dedup by identity, presence, reconciliation; listeners for other features."""

from collector.alarms.engine import AlarmEngine
from collector.alarms.listener import AlarmChange, AlarmListener
from collector.alarms.models import Alarm, AlarmHistory

__all__ = ["Alarm", "AlarmChange", "AlarmEngine", "AlarmHistory", "AlarmListener"]
