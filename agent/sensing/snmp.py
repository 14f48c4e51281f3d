"""The poller of an SNMP device (v2c or v3 authPriv)."""

from __future__ import annotations

from agent.events import SensingSink
from agent.sensing.active import ActiveAlarms
from agent.sensing.measured import MeasuredPoller, Reader
from clocks import Clock
from siteconfig import SnmpDevice, SnmpProfile


class SnmpPoller(MeasuredPoller):
    """Every point of an SNMP device: scalars by GET, table columns by GETBULK walks."""

    device: SnmpDevice

    def __init__(
        self,
        device: SnmpDevice,
        profile: SnmpProfile,
        *,
        sink: SensingSink,
        clock: Clock,
        active: ActiveAlarms,
    ) -> None:
        # Imported here: pysnmp costs memory a site without SNMP does not pay.
        from agent.sensors.snmp import require_support

        require_support(device)  # refused now, not as a device that never answers
        super().__init__(device, profile.points, sink=sink, clock=clock, active=active)
        self._profile = profile

    def _open(self) -> tuple[Reader, float]:
        from agent.sensors.snmp import SnmpReader

        profile = self._profile
        # A GETBULK walk may take several round trips per table column.
        requests = 1 + 4 * sum(1 for p in profile.points.values() if p.table)
        return SnmpReader(self.device, profile), self.device.timeout_s * (requests + 1)
