"""Injectable clocks: domain logic takes a clock, never calls ``datetime.now()`` itself."""

from clocks.clock import Clock, ManualClock, SystemClock, utc

__all__ = ["Clock", "ManualClock", "SystemClock", "utc"]
