"""Syslog over UDP (RFC 3164 and RFC 5424): receive and parse, nothing more.

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
# RFC 3164: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[pid]: MSG (the header is often mangled).
_RFC3164 = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) (?P<host>\S+) (?P<msg>.*)$", re.DOTALL
)
_TAG = re.compile(r"^(?P<app>[^\s:\[]{1,48})(?:\[(?P<procid>[^\]]*)\])?: ?(?P<msg>.*)$", re.DOTALL)


def parse_syslog(data: bytes | str) -> SyslogMessage | None:
    """A message parsed from one datagram, or ``None`` when it has no valid ``<PRI>``."""
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
        return SyslogMessage(
            facility=facility,
            severity=severity,
            hostname=_nil(m5.group("host")),
            app=_nil(m5.group("app")),
            message=msg,
            timestamp=_nil(m5.group("ts")),
            rfc=5424,
        )
    m3 = _RFC3164.match(rest)
    host, timestamp, body = (
        (m3.group("host"), m3.group("ts"), m3.group("msg")) if m3 else (None, None, rest)
    )
    tag = _TAG.match(body)
    return SyslogMessage(
        facility=facility,
        severity=severity,
        hostname=host,
        app=tag.group("app") if tag else None,
        message=tag.group("msg") if tag else body,
        timestamp=timestamp,
        rfc=3164,
    )


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
        message = parse_syslog(data)
        if message is None:
            self.rejected += 1
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
