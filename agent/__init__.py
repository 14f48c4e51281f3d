"""The shelter agent: reads sensors, evaluates alarms at the edge, buffers durably, publishes."""
