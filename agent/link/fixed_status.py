"""A status provider with fixed answers: for links without sensing (benchmarks, tests, tools)."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol import AlarmSnapshot, DeviceHealth, ListenerHealth


@dataclass
class FixedStatus:
    """Reports what it was given; satisfies ``StatusProvider``."""

    config: str = "sha256:none"
    synced: bool = True
    alarms: list[AlarmSnapshot] = field(default_factory=list)
    devices: list[DeviceHealth] = field(default_factory=list)

    def alarm_snapshot(self) -> list[AlarmSnapshot]:
        """The alarms given."""
        return list(self.alarms)

    def config_hash(self) -> str:
        """The config hash given."""
        return self.config

    def device_health(self) -> list[DeviceHealth]:
        """The device health given."""
        return list(self.devices)

    def traps_rejected(self) -> int:
        """No trap listener: none."""
        return 0

    def config_error(self) -> str | None:
        """No configuration refused."""
        return None

    def listener_health(self) -> list[ListenerHealth]:
        """No listener."""
        return []

    def clock_synced(self) -> bool:
        """The clock state given."""
        return self.synced
