"""The poller of a Modbus device (TCP, or RTU on a serial line)."""

from __future__ import annotations

from agent.events import SensingSink
from agent.sensing.active import ActiveAlarms
from agent.sensing.measured import MeasuredPoller, Reader
from clocks import Clock
from siteconfig import ModbusDevice, ModbusProfile


class ModbusPoller(MeasuredPoller):
    """Every point of a Modbus device, in as few requests as its addresses allow."""

    device: ModbusDevice

    def __init__(
        self,
        device: ModbusDevice,
        profile: ModbusProfile,
        *,
        sink: SensingSink,
        clock: Clock,
        active: ActiveAlarms,
    ) -> None:
        super().__init__(device, profile.points, sink=sink, clock=clock, active=active)
        self._profile = profile

    def _open(self) -> tuple[Reader, float]:
        # Imported here: pymodbus costs memory a site without Modbus does not pay.
        from agent.sensors.modbus import ModbusReader

        reader = ModbusReader(self.device, self._profile)
        # One request per merged block, and the connect.
        return reader, self.device.timeout_s * (len(reader.blocks) + 1)
