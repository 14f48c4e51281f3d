"""Agent configuration: site files and device profiles, validated at the door."""

from agent.config.errors import ConfigError
from agent.config.profiles import ContactAlarm, ContactPoint, GpioProfile, Profile, ThresholdAlarm
from agent.config.site import (
    Device,
    GpioDevice,
    SiteConfig,
    load_profile,
    load_site,
    load_site_text,
)

__all__ = [
    "ConfigError",
    "ContactAlarm",
    "ContactPoint",
    "Device",
    "GpioDevice",
    "GpioProfile",
    "Profile",
    "SiteConfig",
    "ThresholdAlarm",
    "load_profile",
    "load_site",
    "load_site_text",
]
