"""Device simulators driven at run time: Modbus sensors and power plants, a UPS over SNMP,
and a fault-injecting TCP proxy (device or link that stops answering, answers garbage or slowly).

Each simulator reads the same device profile the agent uses, so the two cannot disagree."""
