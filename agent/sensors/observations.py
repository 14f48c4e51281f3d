"""What the listening drivers hear, before anything gives it a meaning.

The trap receiver and the syslog receiver hand these on; ``agent/evaluation`` turns them into
alarm transitions through the site's profiles and patterns. This module imports no driver
library, so that evaluation can name these types on a site that loads neither driver.
"""

from __future__ import annotations

from dataclasses import dataclass

# snmpTrapOID.0: the varbind of a v2c/v3 notification that names it.
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"


@dataclass(frozen=True, slots=True)
class TrapNotification:
    """An SNMP trap or inform that passed the protocol's checks (community, v3 keys)."""

    host: str
    # (dotted OID, value as text), in the order they came.
    var_binds: tuple[tuple[str, str], ...]
    # Who vouched for it: the v2c community, or the v3 user and the sender's engine id (hex,
    # lower case, no 0x). None where the protocol does not say.
    community: str | None = None
    user: str | None = None
    engine_id: str | None = None

    @property
    def trap_oid(self) -> str | None:
        """The notification's own OID (the value of snmpTrapOID.0), if it carries one."""
        return dict(self.var_binds).get(SNMP_TRAP_OID)


@dataclass(frozen=True)
class SyslogMessage:
    """One parsed syslog message."""

    facility: int
    severity: int
    hostname: str | None
    app: str | None
    message: str
    timestamp: str | None
    rfc: int  # 3164 or 5424
    # The Cisco IOS / NX-OS tag ("%ENVMON-3-FAN_FAIL") the message starts with, if any.
    mnemonic: str | None = None
    # RFC 5424 structured data, as sent ("[id k="v"]..."), if any.
    structured_data: str | None = None
    # The sender's IP address: what identifies a line that names no host.
    address: str | None = None
