"""Sensing: one poller per device and the site's listeners, readings through edge evaluation
to the sink.

- ``service``: ``SensingService``, what the agent runtime runs (start, hot reload, health,
  live values, and the hooks of the task supervisor: each poller's progress, one restart);
- ``poller``: what every poller is (its task, its health, a stop that always ends);
- ``gpio``, ``modbus``, ``snmp``: one poller per device kind (``measured``: what the Modbus
  and SNMP pollers share: retries, timeout, backoff, communication failure);
- ``listeners``: SNMP traps and syslog;
- ``active``: the alarms raised and not cleared, what a restarted poller starts from.

Driver modules (gpiozero, pymodbus, pysnmp) are imported where a device first needs them:
each costs megabytes of a Pi's memory, and most sites use only some of them.
"""

from agent.sensing.poller import PointValue
from agent.sensing.service import SensingService

__all__ = ["PointValue", "SensingService"]
