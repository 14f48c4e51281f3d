"""``make demo``: broker, collector on SQLite, three simulated sites and a scripted timeline."""

from simulators.demo.stack import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
