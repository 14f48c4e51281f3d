"""Sensor drivers: each speaks only its protocol; what a point means comes from profiles."""

from agent.sensors.gpio import ContactReader

__all__ = ["ContactReader"]
