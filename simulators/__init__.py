"""Simulators for testers: devices, brokers, sites, fleets and the scenario runner."""
