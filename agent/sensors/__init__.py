"""Sensor drivers: each speaks only its protocol; what a point means comes from profiles."""

from agent.sensors.errors import DeviceError
from agent.sensors.gpio import ContactReader
from agent.sensors.modbus import ModbusReader

__all__ = ["ContactReader", "DeviceError", "ModbusReader"]
