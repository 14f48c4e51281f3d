"""SNMP v3 (USM authPriv, SHA + AES-128) through pysnmp 7's engine and hlapi (asyncio).

Imported only for a v3 device: the engine brings pysnmp's security modules (their AES on hashlib's
libcrypto, ``usm``) and its MIB tables (docs/benchmarks.md, agent footprint).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.sensors.snmp import usm  # noqa: F401  (first: pysnmp's USM without cryptography)

# isort: split
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto.rfc1905 import EndOfMibView

from agent.sensors.errors import DeviceError
from agent.sensors.snmp.engine import new_engine
from agent.sensors.snmp.session import Oid, Response, parse_oid, require_privacy
from siteconfig.site import SnmpDevice, SnmpV3


class V3Session:
    """Requests to one v3 device through an engine of its own."""

    def __init__(self, device: SnmpDevice) -> None:
        auth = device.auth
        assert isinstance(auth, SnmpV3)
        require_privacy()
        self._device = device
        self._auth = UsmUserData(
            auth.user,
            authKey=auth.auth_key,
            privKey=auth.priv_key,
            authProtocol=usmHMACSHAAuthProtocol,
            privProtocol=usmAesCfb128Protocol,
        )
        self._engine = new_engine()
        self._target: Any = None

    async def get(self, oids: Sequence[str]) -> Response:
        """One GET for ``oids``."""
        err_ind, err_status, err_index, var_binds = await get_cmd(
            self._engine,
            self._auth,
            await self._transport(),
            ContextData(),
            *(ObjectType(ObjectIdentity(o)) for o in oids),
        )
        if err_ind:
            return Response(error=str(err_ind))
        if err_status:
            return Response(status=err_status.prettyPrint(), index=int(err_index))
        return Response(var_binds=[(tuple(name), raw) for name, raw in var_binds])

    async def walk(self, oid: str, max_repetitions: int) -> Response:
        """GETBULK walk of the column under ``oid``."""
        prefix = parse_oid(oid)
        rows: list[tuple[Oid, Any]] = []
        async for err_ind, err_status, _err_index, var_binds in bulk_walk_cmd(
            self._engine,
            self._auth,
            await self._transport(),
            ContextData(),
            0,
            max_repetitions,
            ObjectType(ObjectIdentity(oid)),
            lexicographicMode=False,
        ):
            if err_ind:
                return Response(error=str(err_ind))
            if err_status:
                return Response(status=err_status.prettyPrint())
            for name, raw in var_binds:
                parts = tuple(name)
                if parts[: len(prefix)] != prefix or isinstance(raw, EndOfMibView):
                    return Response(var_binds=rows)
                rows.append((parts, raw))
        return Response(var_binds=rows)

    async def _transport(self) -> Any:
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self._device.host, self._device.port),
                    timeout=self._device.timeout_s,
                    retries=0,  # retries are the poller's, with its backoff
                )
            except PySnmpError as err:  # e.g. a host name that does not resolve
                where = f"{self._device.host}:{self._device.port}"
                raise DeviceError(f"snmp {where}: {err}") from err
        return self._target

    def reset(self) -> None:
        """A fresh engine: it rediscovers a v3 agent that rebooted (new boots/time, maybe a new
        engine id); the old one keeps sending outside the time window, unanswered."""
        self.close()
        self._engine = new_engine()
        self._target = None

    def close(self) -> None:
        """Release the engine's sockets."""
        self._engine.close_dispatcher()
