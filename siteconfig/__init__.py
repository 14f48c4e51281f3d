"""The format of site files and device profiles, validated at the door.

A site file (``firmware_config/sites/*.yaml``) is a box's identity, broker, outbox and devices;
each device references a profile (``firmware_config/profiles/*.yaml``), the meaning of an
equipment model's points as data. The agent loads them; the collector's enrolment writes and
checks site-file skeletons; the simulators build devices and scenarios from them. This package
is that shared format, as ``protocol/`` is the shared wire contract: it imports neither
``agent`` nor ``collector``.

Every error is a ``ConfigError`` naming the file, the path inside it and the reason.
"""

from siteconfig.errors import ConfigError
from siteconfig.mqtt import LinkSettings, TlsSettings
from siteconfig.outbox import OutboxSettings
from siteconfig.profiles import (
    BitAlarm,
    ContactAlarm,
    ContactPoint,
    EqualsAlarm,
    GpioProfile,
    ModbusPoint,
    ModbusProfile,
    OnlyIf,
    Profile,
    SnmpPoint,
    SnmpProfile,
    SnmpTrap,
    Telemetry,
    ThresholdAlarm,
)
from siteconfig.site import (
    CollectorApi,
    Device,
    GpioDevice,
    ModbusDevice,
    ModbusRtu,
    ModbusTcp,
    SiteConfig,
    SnmpDevice,
    SnmpV2c,
    SnmpV3,
    SyslogListener,
    SyslogPattern,
    TrapListener,
    TrapUser,
    load_profile,
    load_profile_text,
    load_site,
    load_site_text,
)
from siteconfig.validate import validate_files

__all__ = [
    "BitAlarm",
    "CollectorApi",
    "ConfigError",
    "ContactAlarm",
    "ContactPoint",
    "Device",
    "EqualsAlarm",
    "GpioDevice",
    "GpioProfile",
    "LinkSettings",
    "ModbusDevice",
    "ModbusPoint",
    "ModbusProfile",
    "ModbusRtu",
    "ModbusTcp",
    "OnlyIf",
    "OutboxSettings",
    "Profile",
    "SiteConfig",
    "SnmpDevice",
    "SnmpPoint",
    "SnmpProfile",
    "SnmpTrap",
    "SnmpV2c",
    "SnmpV3",
    "SyslogListener",
    "SyslogPattern",
    "Telemetry",
    "ThresholdAlarm",
    "TlsSettings",
    "TrapListener",
    "TrapUser",
    "load_profile",
    "load_profile_text",
    "load_site",
    "load_site_text",
    "validate_files",
]
