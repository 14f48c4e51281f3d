"""A real net-snmp ``snmpd`` serving UPS-MIB values the tests write as literal constants.

The daemon is the scenario runner's SNMP simulator; only the values are the tests' own."""

from __future__ import annotations

from pathlib import Path

from simulators.devices.snmp import (
    COMMUNITY,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    SnmpDeviceSimulator,
    free_udp_port,
)
from siteconfig import load_profile
from siteconfig.profiles import SnmpProfile

__all__ = [
    "COMMUNITY",
    "UPS",
    "UPS_VALUES",
    "V3_AUTH",
    "V3_PRIV",
    "V3_USER",
    "Snmpd",
    "free_udp_port",
]

PROFILE = Path(__file__).resolve().parents[4] / "firmware_config" / "profiles" / "snmp-ups-mib.yaml"

UPS = "1.3.6.1.2.1.33"
# OID -> (net-snmp pass type, value). Two input lines: a two-row table.
UPS_VALUES: dict[str, tuple[str, str]] = {
    f"{UPS}.1.2.1.0": ("integer", "2"),  # upsBatteryStatus normal
    f"{UPS}.1.2.2.0": ("integer", "0"),  # upsSecondsOnBattery
    f"{UPS}.1.2.3.0": ("integer", "42"),  # upsEstimatedMinutesRemaining
    f"{UPS}.1.2.4.0": ("integer", "97"),  # upsEstimatedChargeRemaining
    f"{UPS}.1.2.7.0": ("integer", "27"),  # upsBatteryTemperature
    f"{UPS}.1.3.3.1.3.1": ("integer", "231"),  # upsInputVoltage, line 1
    f"{UPS}.1.3.3.1.3.2": ("integer", "229"),  # upsInputVoltage, line 2
    f"{UPS}.1.4.1.0": ("integer", "3"),  # upsOutputSource normal
    f"{UPS}.1.6.1.0": ("gauge", "0"),  # upsAlarmsPresent
}


class Snmpd(SnmpDeviceSimulator):
    """The UPS simulator holding ``UPS_VALUES``."""

    def __init__(self, workdir: Path) -> None:
        profile = load_profile(PROFILE)
        assert isinstance(profile, SnmpProfile)
        super().__init__(profile, workdir, values=UPS_VALUES)
