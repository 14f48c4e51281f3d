"""``make demo``: broker, collector on SQLite, three simulated sites and a scripted timeline."""

from simulators.demo.stack import DemoError, DemoOptions, run_demo

__all__ = ["DemoError", "DemoOptions", "run_demo"]
