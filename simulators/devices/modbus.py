"""A Modbus TCP device simulated from an agent profile.

The register map comes from the profile the agent reads (function, address, type, word and
byte order, scale, offset, bit); values are set by point name. The server is pyModbusTCP's — not
pymodbus, which the agent uses — so a shared mistake in one library cannot hide a bug, and a
``FaultyProxy`` in front of it makes the device silent, slow or garbled on demand.
"""

from __future__ import annotations

import math
import struct

from pyModbusTCP.server import DataBank, ModbusServer

from simulators.broker import free_port
from simulators.devices.faults import Fault, FaultyProxy
from simulators.devices.rtu import RtuGateway
from siteconfig.profiles import ModbusPoint, ModbusProfile

_FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}
_INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


class SimulatorError(ValueError):
    """A value the device cannot hold, or a point the profile does not have."""


def encode_point(point: ModbusPoint, value: float) -> list[int]:
    """The register words a device holds for ``value`` (the inverse of the agent's decoding)."""
    raw = (value - point.offset) / point.scale
    if point.type == "float32":
        data = struct.pack(">f", raw)
    else:
        number = round(raw)
        low, high = _INT_RANGES[point.type]
        if not low <= number <= high or math.isnan(raw):
            raise SimulatorError(f"{value} does not fit a {point.type} with scale {point.scale}")
        data = struct.pack(_FORMATS[point.type], number)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if point.word_order == "little":
        words.reverse()
    if point.byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words


class ModbusDeviceSimulator:
    """One device holding the registers of ``profile``: over TCP at ``port``, and with
    ``rtu=True`` also over RTU on the pseudo-terminal ``serial_port``."""

    def __init__(self, profile: ModbusProfile, *, slow_s: float = 3.0, rtu: bool = False) -> None:
        self.profile = profile
        self._rtu: RtuGateway | None = None
        self._want_rtu = rtu
        self._slow_s = slow_s
        self.bank = DataBank(coils_size=0x10000, d_inputs_size=0x10000)
        self._server = ModbusServer(
            host="127.0.0.1", port=free_port(), no_block=True, data_bank=self.bank
        )
        self._proxy = FaultyProxy(target=("127.0.0.1", self._server.port), slow_s=slow_s)

    @property
    def port(self) -> int:
        """Where the agent connects (through the fault proxy)."""
        return self._proxy.port

    def start(self) -> None:
        """Start serving on a free loopback port."""
        self._server.start()
        self._proxy.start()
        if self._want_rtu:
            self._rtu = RtuGateway(tcp_port=self.server_port)
            self._rtu.slow_s = self._slow_s
            self._rtu.start()

    @property
    def serial_port(self) -> str:
        """The pty path an RTU agent opens (only with ``rtu=True``)."""
        if self._rtu is None:
            raise SimulatorError(f"{self.profile.name}: not started with rtu=True")
        return self._rtu.port

    def stop(self) -> None:
        """Stop the device (connections refused from now on)."""
        if self._rtu is not None:
            self._rtu.stop()
        self._proxy.stop()
        self._server.stop()

    def set_fault(self, fault: Fault | str) -> None:
        """Make the device silent, slow, garbled, unplugged (``down``) or healthy (``none``)."""
        self._proxy.set_fault(fault)
        if self._rtu is not None:
            self._rtu.fault = Fault(fault)

    def set(self, point_name: str, value: float | bool) -> None:
        """Hold ``value`` for a point from now on, encoded as the profile says."""
        point = self.profile.points.get(point_name)
        if point is None:
            known = ", ".join(sorted(self.profile.points))
            raise SimulatorError(
                f"profile {self.profile.name} has no point {point_name!r} ({known})"
            )
        if point.function in (1, 2):
            setter = self.bank.set_coils if point.function == 1 else self.bank.set_discrete_inputs
            setter(point.address, [bool(value)])
            return
        get, put = self._registers(point.function)
        if point.bit is not None:
            word = (get(point.address, 1) or [0])[0]
            mask = 1 << point.bit
            put(point.address, [(word | mask) if value else (word & ~mask)])
            return
        put(point.address, encode_point(point, float(value)))

    @property
    def server_port(self) -> int:
        """The server itself, behind the fault proxy (what an RTU gateway talks to)."""
        return int(self._server.port)

    def words(self, function: int, address: int, count: int) -> list[int]:
        """The raw words held (for tests and troubleshooting)."""
        get, _ = self._registers(function)
        return list(get(address, count) or [])

    def _registers(self, function: int):  # type: ignore[no-untyped-def]
        if function == 3:
            return self.bank.get_holding_registers, self.bank.set_holding_registers
        return self.bank.get_input_registers, self.bank.set_input_registers
