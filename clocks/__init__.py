"""Injectable clocks: domain logic takes a clock, never calls ``datetime.now()`` itself."""

from clocks.clock import Clock, ManualClock, SystemClock, utc
from clocks.stepped import SteppedClock, stepped_from_environment
from clocks.warp import WarpClock, clock_from_environment, jumped_within

__all__ = [
    "Clock",
    "ManualClock",
    "SteppedClock",
    "SystemClock",
    "WarpClock",
    "clock_from_environment",
    "jumped_within",
    "stepped_from_environment",
    "utc",
]
