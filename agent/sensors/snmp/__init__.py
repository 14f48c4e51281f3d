"""SNMP: polling (``reader``: GET and GETBULK walks over a v2c or v3 ``session``) and the
trap/inform receiver (``traps``). Only the protocol: what an OID or a trap means comes from
the device's profile, through ``agent/evaluation``.

Imported only when a site has an SNMP device or a trap listener; SNMPv3 (``v3``: pysnmp's
engine and its security modules, ``usm``) only when a v3 device is polled.
"""

from agent.sensors.snmp.reader import SnmpReader, require_support

__all__ = ["SnmpReader", "require_support"]
