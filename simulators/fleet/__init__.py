"""Fleet simulator: thousands of virtual agents speaking the real contract from one process."""

from simulators.fleet.agent import FleetStats, VirtualAgent
from simulators.fleet.fleet import Fleet, FleetConfig, FleetReport

__all__ = ["Fleet", "FleetConfig", "FleetReport", "FleetStats", "VirtualAgent"]
