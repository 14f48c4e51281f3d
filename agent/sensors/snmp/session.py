"""What an SNMP reader needs from a protocol session (v2c or v3), what a request returns, and
the check that SNMPv3 privacy can work at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.sensors.errors import DeviceError

# pysnmp's own text for a request that timed out; readers explain it in the device's terms.
TIMED_OUT = "No SNMP response received before timeout"

Oid = tuple[int, ...]


def parse_oid(dotted: str) -> Oid:
    """``"1.3.6.1.2.1"`` as a tuple of ints."""
    return tuple(int(x) for x in dotted.split("."))


def require_privacy() -> None:
    """Raise ``DeviceError`` unless pysnmp can encrypt: without AES it drops authPriv
    traffic without a word (only a counter moves), so v3 would look like a dead device."""
    # Imported here: pysnmp's USM, which a v2c-only agent never loads (``usm``: its AES on
    # hashlib's libcrypto, else on cryptography).
    from agent.sensors.snmp import usm  # noqa: F401

    # isort: split
    from pysnmp.proto.secmod.rfc3826.priv import aes

    if aes.PysnmpCryptoError:
        raise DeviceError(
            "SNMPv3 authPriv needs AES: neither hashlib's libcrypto nor the 'cryptography'"
            " package is usable;"
            " install the agent extra: pip install 'shelterwatch[agent]'"
        )


@dataclass(frozen=True)
class Response:
    """An SNMP answer, or why there is none.

    ``error`` is an error indication (no answer, authentication failure...); ``status`` the
    name of a non-zero error-status of the response, at ``index``.
    """

    var_binds: list[tuple[Oid, Any]] = field(default_factory=list)
    error: str | None = None
    status: str | None = None
    index: int = 0


class SnmpSession(Protocol):
    """GET and GETBULK walks to one device."""

    async def get(self, oids: Sequence[str]) -> Response:
        """One GET carrying ``oids``; the var binds come back in the same order."""
        ...

    async def walk(self, oid: str, max_repetitions: int) -> Response:
        """The rows of the column under ``oid``, by GETBULK, until past it or end of MIB."""
        ...

    def reset(self) -> None:
        """Forget the transport and what was learnt of the device (after any failure)."""
        ...

    def close(self) -> None:
        """Release sockets."""
        ...
