"""Agent configuration: site files and device profiles, validated at the door."""

from agent.config.errors import ConfigError
from agent.config.profiles import (
    ContactAlarm,
    ContactPoint,
    EqualsAlarm,
    GpioProfile,
    Profile,
    SnmpPoint,
    SnmpProfile,
    SnmpTrap,
    ThresholdAlarm,
)
from agent.config.site import (
    Device,
    GpioDevice,
    SiteConfig,
    SnmpDevice,
    SyslogListener,
    SyslogPattern,
    TrapListener,
    TrapUser,
    load_profile,
    load_profile_text,
    load_site,
    load_site_text,
)

__all__ = [
    "ConfigError",
    "ContactAlarm",
    "ContactPoint",
    "Device",
    "EqualsAlarm",
    "GpioDevice",
    "GpioProfile",
    "Profile",
    "SiteConfig",
    "SnmpDevice",
    "SnmpPoint",
    "SnmpProfile",
    "SnmpTrap",
    "SyslogListener",
    "SyslogPattern",
    "ThresholdAlarm",
    "TrapListener",
    "TrapUser",
    "load_profile",
    "load_profile_text",
    "load_site",
    "load_site_text",
]
