"""SNMP trap and inform receiver (pysnmp ``ntfrcv``, v2c and v3 authPriv SHA/AES): only the
protocol.

A notification that passes the protocol's checks is handed on as a ``TrapNotification``; what
it means (which device sent it, which alarm it raises or clears) is decided in
``agent/evaluation/traps.py`` from the traps section of the sender's profile. What the protocol
refuses is rejected here, counted and logged: unknown community, user or engine id, bad keys,
undecodable datagrams.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from agent.sensors.snmp import usm  # noqa: F401  (first: pysnmp's USM without cryptography)

# isort: split
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config as snmp_config
from pysnmp.entity import engine as snmp_engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.rfc1902 import OctetString

from agent.sensors.observations import TrapNotification
from agent.sensors.snmp.engine import new_engine
from agent.sensors.snmp.session import require_privacy
from siteconfig import TrapListener

log = logging.getLogger(__name__)

# pysnmp drops these silently, only bumping a counter: each one is a rejected datagram.
# (An inform sender's engine-id discovery bumps usmStatsUnknownEngineIDs, and its time
# synchronisation usmStatsNotInTimeWindows: see ``_discovery``.)
_DROP_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("__SNMPv2-MIB", "snmpInBadCommunityNames", "unknown community"),
    ("__SNMPv2-MIB", "snmpInASNParseErrs", "undecodable"),
    ("__SNMPv2-MIB", "snmpInBadVersions", "unsupported SNMP version"),
    ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels", "unknown security model"),
    ("__SNMP-MPD-MIB", "snmpInvalidMsgs", "invalid message"),
    ("__SNMP-MPD-MIB", "snmpUnknownPDUHandlers", "no handler for the PDU"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs", "unknown engine id"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames", "unknown user or engine id"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests", "wrong authentication key"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors", "wrong privacy key"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows", "not in time window"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels", "unsupported security level"),
)


class TrapReceiver:
    """Async context manager: binds the trap port inside the running event loop."""

    def __init__(
        self, settings: TrapListener, *, on_notification: Callable[[TrapNotification], None]
    ) -> None:
        # Only the protocol's part of the settings: where to listen, communities and v3 users.
        self._settings = settings
        self._on_notification = on_notification
        self._engine: snmp_engine.SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._sock: socket.socket | None = None
        self.rejected = 0
        self.received = 0
        self.rejected_by: dict[str, int] = {}
        # Engine-id discoveries answered (informs): not rejections.
        self.discoveries = 0
        self._levels = {u.user: _LEVELS[u.security_level] for u in settings.users}
        self._communities = {f"trap-community-{i}": c for i, c in enumerate(settings.communities)}
        self._usm_engine_id = b""

    @property
    def port(self) -> int:
        """The bound UDP port."""
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    async def __aenter__(self) -> TrapReceiver:
        if self._settings.users:
            require_privacy()  # v3 traps would otherwise be dropped as undecryptable
        # Everything below must run inside the loop that will deliver datagrams: pysnmp's
        # asyncio transport binds to the loop current at its creation.
        engine = new_engine()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self._settings.bind, self._settings.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        transport = _CheckedTransport(self)
        snmp_config.add_transport(
            engine, udp.SNMP_UDP_DOMAIN, transport.open_server_mode(sock=sock)
        )
        for index, community in enumerate(self._settings.communities):
            snmp_config.add_v1_system(engine, f"trap-community-{index}", community)
        for user in self._settings.users:
            keys: dict[str, Any] = {
                "authProtocol": snmp_config.USM_AUTH_HMAC96_SHA,
                "authKey": user.auth_key,
            }
            if user.security_level == "authPriv":
                keys.update(privProtocol=snmp_config.USM_PRIV_CFB128_AES, privKey=user.priv_key)
            # Traps are authoritative at the sender: its engine id must be known in advance.
            snmp_config.add_v3_user(
                engine,
                user.user,
                securityEngineId=OctetString(hexValue=user.engine_id.removeprefix("0x")),
                **keys,
            )
            # Informs are authoritative here, at our own engine id (the sender discovers it).
            snmp_config.add_v3_user(engine, user.user, **keys)
        # USM forgets the message's authoritative engine id before the PDU reaches us: noted
        # as it passes.
        engine.observer.register_observer(self._usm_seen, "rfc3414.processIncomingMsg")
        self._receiver = ntfrcv.NotificationReceiver(engine, self._notification)
        self._engine = engine
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._engine is not None:
            if self._receiver is not None:
                self._receiver.close(self._engine)
            self._engine.close_dispatcher()
            self._engine = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _usm_seen(self, engine: Any, execpoint: str, variables: Any, context: Any) -> None:
        self._usm_engine_id = bytes(variables["securityEngineId"])

    def _drop_counts(self) -> list[int]:
        assert self._engine is not None
        builder = self._engine.get_mib_builder()
        return [
            int(builder.import_symbols(module, name)[0].syntax)
            for module, name, _ in _DROP_COUNTERS
        ]

    def _checked(
        self, process: Callable[[], None], address: tuple[str, int], datagram: bytes
    ) -> None:
        before = self._drop_counts()
        process()
        after = self._drop_counts()
        reasons = [
            reason
            for (_, _, reason), b, a in zip(_DROP_COUNTERS, before, after, strict=True)
            if a > b
        ]
        if reasons and _discovery(datagram):
            # An inform sender learning our engine id, boots and time (RFC 3414 4): answered
            # with a report, as it should be; no trap was refused.
            self.discoveries += 1
            return
        if reasons:
            self._reject(address, ", ".join(reasons))

    def _reject(self, address: tuple[str, int], reason: str) -> None:
        self.rejected += 1
        self.rejected_by[reason] = self.rejected_by.get(reason, 0) + 1
        log.warning("snmp trap from %s rejected: %s", address[0], reason)

    def _notification(
        self,
        engine: snmp_engine.SnmpEngine,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        var_binds: Any,
        cb_ctx: Any,
    ) -> None:
        _, address = engine.message_dispatcher.get_transport_info(state_reference)
        host = (str(address[0]), int(address[1]))
        request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        model, name = int(request["securityModel"]), str(request["securityName"])
        level = int(request["securityLevel"])
        community = user = engine_id = None
        if model == _USM:
            user = name
            wanted = self._levels.get(name, _LEVELS["authPriv"])
            if level < wanted:
                # The user's configured level is the minimum: an authNoPriv trap for an
                # authPriv user is refused, as a forger knowing only the auth key would send.
                self._reject(host, f"security level below {_LEVEL_NAMES[wanted]} for {name}")
                return
            engine_id = _sender_engine(
                engine, self._usm_engine_id, bytes(request["contextEngineId"])
            )
        else:
            community = self._communities.get(name, name)
        self.received += 1
        self._on_notification(
            TrapNotification(
                host=host[0],
                var_binds=tuple((str(oid), value.prettyPrint()) for oid, value in var_binds),
                community=community,
                user=user,
                engine_id=engine_id,
            )
        )


_USM = 3  # securityModel of SNMPv3
_LEVELS = {"authNoPriv": 2, "authPriv": 3}
_LEVEL_NAMES = {v: k for k, v in _LEVELS.items()}


def _sender_engine(engine: snmp_engine.SnmpEngine, authoritative: bytes, context: bytes) -> str:
    """The sender's engine id: the authoritative one of a trap; for an inform (authoritative
    here) the context engine id the sender put in its PDU."""
    ours = bytes(engine.snmpEngineID.asOctets())
    return (context if authoritative in (ours, b"") else authoritative).hex()


def _discovery(datagram: bytes) -> bool:
    """Whether an SNMPv3 message is an engine-id discovery or time synchronisation probe: no
    authoritative engine id, or boots and time still 0 (RFC 3414 4)."""
    try:
        from pyasn1.codec.ber import decoder  # type: ignore[import-untyped]
        from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
        from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

        message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
        params, _ = decoder.decode(
            bytes(message.getComponentByPosition(2)), asn1Spec=UsmSecurityParameters()
        )
    except Exception:  # not a v3 message, or not one we can read: not a discovery
        return False
    engine_id = bytes(params.getComponentByPosition(0))
    boots, time = int(params.getComponentByPosition(1)), int(params.getComponentByPosition(2))
    return not engine_id or (boots == 0 and time == 0)


class _CheckedTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """Hands each datagram to the engine, then tells the receiver whether it was dropped."""

    def __init__(self, receiver: TrapReceiver) -> None:
        super().__init__()
        self._receiver = receiver

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        address = (str(transportAddress[0]), int(transportAddress[1]))
        callback = self._callback_function
        if callback is None:
            return
        self.loop.call_soon(
            self._receiver._checked,
            lambda: callback(self, transportAddress, datagram),
            address,
            datagram,
        )
