"""Syslog over UDP (RFC 3164, in the forms network equipment sends, and RFC 5424): receive
and parse, nothing more.

Each message is handed on as a ``SyslogMessage``; the site's patterns give it a meaning in
``agent/evaluation/syslog.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from agent.sensors.observations import SyslogMessage

log = logging.getLogger(__name__)

_PRI = re.compile(r"^<(\d{1,3})>")
# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
_RFC5424 = re.compile(
    r"^(?P<version>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
# RFC 3164: <PRI>TIMESTAMP HOSTNAME TAG[pid]: MSG, as network equipment really sends it: an
# optional sequence number ("58: "), a timestamp that may carry a year (NX-OS), milliseconds,
# a time zone and the "*" or "." of an unsynchronised clock, a hostname that may come first
# with a colon (IOS "logging origin-id"), or no hostname at all.
_SEQ = re.compile(r"^\d{1,10}: ")
_TS = (
    r"[*.]?(?:\d{4} )?[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
    r"(?: [A-Z]{2,5}(?:[+-]\d{1,2})?)?"
)
_HOST_FIRST = re.compile(rf"^(?P<host>[^\s:]+): (?P<ts>{_TS}): ?(?P<msg>.*)$", re.DOTALL)
_TS_FIRST = re.compile(rf"^(?P<ts>{_TS}):? (?P<msg>.*)$", re.DOTALL)
_TAG = re.compile(r"^(?P<app>[^\s:\[]{1,48})(?:\[(?P<procid>[^\]]*)\])?: ?(?P<msg>.*)$", re.DOTALL)
# Cisco IOS / NX-OS message tags: %FACILITY-SEVERITY-MNEMONIC: (facility may have sub-parts).
_MNEMONIC = re.compile(r"^%(?:[A-Z0-9_]+-)+[0-7]-[A-Z0-9_]+:")
# A hostname token: a name or an address, never a tag ("app:", "app[12]:").
_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


_NOT_SYSLOG = "not a syslog message"


def parse_syslog(data: bytes | str, *, address: str | None = None) -> SyslogMessage | None:
    """A message parsed from one datagram (sent from ``address``), or ``None`` when it has no
    valid ``<PRI>``."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.removeprefix("\ufeff").rstrip("\r\n\x00")
    pri = _PRI.match(text)
    if pri is None or int(pri.group(1)) > 191:
        return None
    facility, severity = divmod(int(pri.group(1)), 8)
    rest = text[pri.end() :]
    m5 = _RFC5424.match(rest)
    if m5 is not None:
        msg = (m5.group("msg") or "").removeprefix("\ufeff")
        sd = m5.group("sd")
        return SyslogMessage(
            facility=facility,
            severity=severity,
            hostname=_nil(m5.group("host")),
            app=_nil(m5.group("app")),
            message=msg,
            timestamp=_nil(m5.group("ts")),
            rfc=5424,
            mnemonic=_mnemonic(msg),
            structured_data=None if sd == "-" else sd,
            address=address,
        )
    host, timestamp, body = _rfc3164_header(_SEQ.sub("", rest, count=1))
    mnemonic = _mnemonic(body)
    tag = None if mnemonic else _TAG.match(body)
    message = tag.group("msg") if tag else body
    return SyslogMessage(
        facility=facility,
        severity=severity,
        hostname=host,
        app=tag.group("app") if tag else None,
        message=message,
        timestamp=timestamp,
        rfc=3164,
        mnemonic=mnemonic or _mnemonic(message),
        address=address,
    )


def _rfc3164_header(rest: str) -> tuple[str | None, str | None, str]:
    """(hostname, timestamp, what follows) of an RFC 3164 line, each part optional."""
    first = _HOST_FIRST.match(rest)
    if first is not None:
        return first.group("host"), first.group("ts"), first.group("msg")
    dated = _TS_FIRST.match(rest)
    if dated is None:
        return None, None, rest  # headerless: "<PRI>tag: msg"
    timestamp, after = dated.group("ts"), dated.group("msg")
    token, _, remainder = after.partition(" ")
    if _MNEMONIC.match(after):
        return None, timestamp, after  # no hostname, straight to the Cisco tag
    if token.endswith(":") and _MNEMONIC.match(remainder):
        return token[:-1], timestamp, remainder  # "router-1: %LINK-3-UPDOWN: ..."
    if _HOSTNAME.match(token) and not token.endswith(":"):
        return token, timestamp, remainder
    return None, timestamp, after  # no hostname: the token is the tag ("app[12]:")


def _mnemonic(body: str) -> str | None:
    found = _MNEMONIC.match(body)
    return found.group(0)[:-1] if found else None


def _nil(value: str) -> str | None:
    return None if value == "-" else value


class SyslogReceiver:
    """Async context manager: a UDP syslog socket bound inside the running loop."""

    def __init__(
        self, *, bind: str, port: int, on_message: Callable[[SyslogMessage], None]
    ) -> None:
        self._bind, self._port = bind, port
        self._on_message = on_message
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol
        self.rejected = 0
        self.received = 0
        self.rejected_by: dict[str, int] = {}

    @property
    def port(self) -> int:
        """The bound UDP port (useful when configured as 0)."""
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def __aenter__(self) -> SyslogReceiver:
        loop = asyncio.get_running_loop()
        self._transport, self._protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._datagram, loop.create_future()),
            local_addr=(self._bind, self._port),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Closes the socket, and returns only once it is closed."""
        transport, self._transport = self._transport, None
        if transport is None:
            return
        transport.close()
        # asyncio closes the socket itself on the next turn of the loop: awaited, so that a
        # receiver bound again to the same port right after (a hot reload) finds it free.
        await asyncio.shield(self._protocol.closed)

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_syslog(data, address=addr[0])
        if message is None:
            self.rejected += 1
            self.rejected_by[_NOT_SYSLOG] = self.rejected
            log.warning("syslog from %s: not a syslog message (%d bytes)", addr[0], len(data))
            return
        self.received += 1
        self._on_message(message)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(
        self, handle: Callable[[bytes, tuple[str, int]], None], closed: asyncio.Future[None]
    ) -> None:
        self._handle = handle
        self.closed = closed

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._handle(data, addr)
