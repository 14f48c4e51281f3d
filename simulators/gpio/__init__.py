"""GPIO pins driven from outside the agent process."""

from simulators.gpio.driver import GpioDriver, GpioDriverError

__all__ = ["GpioDriver", "GpioDriverError"]
