"""Sensor drivers: each speaks only its protocol; what a point means comes from profiles.

The readers are imported on first use: each driver library (gpiozero, pymodbus, pysnmp) costs
megabytes of a Pi's memory, and a site pays only for the drivers its devices use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent.sensors.errors import DeviceError

if TYPE_CHECKING:
    from agent.sensors.gpio import ContactReader
    from agent.sensors.modbus import ModbusReader
    from agent.sensors.snmp import SnmpReader

__all__ = ["ContactReader", "DeviceError", "ModbusReader", "SnmpReader"]

_LAZY = {
    "ContactReader": "agent.sensors.gpio",
    "ModbusReader": "agent.sensors.modbus",
    "SnmpReader": "agent.sensors.snmp",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
