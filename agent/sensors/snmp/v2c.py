"""SNMP v2c GET and GETBULK on pysnmp's message layer (``pysnmp.proto.api``) over asyncio UDP.

v2c needs no SNMP engine: a request is one community-stamped PDU and its answer one datagram
with the same request id. Going without the engine (and pysnmp's hlapi) is the point: the
engine imports the USM security modules with cryptography and builds MIB tables, about 15 MiB
a Raspberry Pi would hold for nothing on a v2c-only site (docs/benchmarks.md, agent footprint).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]
from pysnmp.proto.api import v2c
from pysnmp.proto.rfc1905 import EndOfMibView

from agent.sensors.errors import DeviceError
from agent.sensors.snmp.session import TIMED_OUT, Oid, Response, parse_oid
from siteconfig.site import SnmpDevice, SnmpV2c

_SNMP_V2C = 1  # msgVersion of a v2c message
_NO_SUCH_NAME = 2  # a v1 error-status some proxies leak into v2c walks: the column ended


class _Endpoint(asyncio.DatagramProtocol):
    """A UDP socket connected to the device (the kernel drops datagrams from anyone else)."""

    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future[Any]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            message, _ = decoder.decode(data, asn1Spec=v2c.Message())
            if int(v2c.apiMessage.get_version(message)) != _SNMP_V2C:
                return
            pdu = v2c.apiMessage.get_pdu(message)
            request_id = int(v2c.apiPDU.get_request_id(pdu))
        except (PyAsn1Error, ValueError, TypeError):
            return  # undecodable: as pysnmp does, drop it and keep waiting
        future = self.pending.pop(request_id, None)
        if future is not None and not future.done() and isinstance(pdu, v2c.ResponsePDU):
            future.set_result(pdu)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the device is answered for by its timeout, as
        # with pysnmp's engine, so the message stays "no answer within ...".
        pass


class V2cSession:
    """Requests to one v2c device, one at a time, each with the device's timeout."""

    def __init__(self, device: SnmpDevice) -> None:
        assert isinstance(device.auth, SnmpV2c)
        self._device = device
        self._community = device.auth.community
        self._endpoint: tuple[asyncio.DatagramTransport, _Endpoint] | None = None

    async def get(self, oids: Sequence[str]) -> Response:
        """One GET for ``oids``."""
        pdu = v2c.GetRequestPDU()
        v2c.apiPDU.set_defaults(pdu)
        v2c.apiPDU.set_varbinds(pdu, [(v2c.ObjectIdentifier(o), v2c.null) for o in oids])
        response = await self._request(pdu)
        if response.error is None and len(response.var_binds) != len(oids):
            return Response(error=f"{len(response.var_binds)} values for {len(oids)} OIDs")
        return response

    async def walk(self, oid: str, max_repetitions: int) -> Response:
        """GETBULK from ``oid`` until a row leaves the column, end of MIB, or no more rows."""
        prefix = parse_oid(oid)
        start, rows = prefix, list[tuple[Oid, Any]]()
        while True:
            pdu = v2c.GetBulkRequestPDU()
            v2c.apiBulkPDU.set_defaults(pdu)
            v2c.apiBulkPDU.set_non_repeaters(pdu, 0)
            v2c.apiBulkPDU.set_max_repetitions(pdu, max_repetitions)
            v2c.apiBulkPDU.set_varbinds(pdu, [(v2c.ObjectIdentifier(start), v2c.null)])
            response = await self._request(pdu)
            if response.error is not None or response.status is not None:
                return response
            for name, raw in response.var_binds:
                if name[: len(prefix)] != prefix or isinstance(raw, EndOfMibView):
                    return Response(var_binds=rows)
                rows.append((name, raw))
            if not response.var_binds:
                return Response(var_binds=rows)
            last = response.var_binds[-1][0]
            if last <= start:  # an agent going backwards would keep this walk going forever
                return Response(error="OID not increasing")
            start = last

    async def _request(self, pdu: Any) -> Response:
        transport, endpoint = await self._open()
        message = v2c.Message()
        v2c.apiMessage.set_defaults(message)
        v2c.apiMessage.set_community(message, self._community)
        v2c.apiMessage.set_pdu(message, pdu)
        request_id = int(v2c.apiPDU.get_request_id(pdu))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        endpoint.pending[request_id] = future
        try:
            transport.sendto(encoder.encode(message))
            async with asyncio.timeout(self._device.timeout_s):  # wait_for can eat a cancel
                answer = await future
        except TimeoutError:
            return Response(error=TIMED_OUT)
        finally:
            endpoint.pending.pop(request_id, None)
        status = int(v2c.apiPDU.get_error_status(answer))
        if status == _NO_SUCH_NAME and isinstance(pdu, v2c.GetBulkRequestPDU):
            return Response()  # hidden as pysnmp's walk hides it: nothing more in the column
        if status:
            return Response(
                status=v2c.apiPDU.get_error_status(answer).prettyPrint(),
                index=int(v2c.apiPDU.get_error_index(answer, muteErrors=True)),
            )
        return Response(
            var_binds=[(tuple(name), value) for name, value in v2c.apiPDU.get_varbinds(answer)]
        )

    async def _open(self) -> tuple[asyncio.DatagramTransport, _Endpoint]:
        if self._endpoint is None:
            try:
                self._endpoint = await asyncio.get_running_loop().create_datagram_endpoint(
                    _Endpoint, remote_addr=(self._device.host, self._device.port)
                )
            except OSError as err:
                raise DeviceError(
                    f"snmp {self._device.host}:{self._device.port}: cannot open UDP: {err}"
                ) from err
        return self._endpoint

    def reset(self) -> None:
        """Drop the socket; the next request opens a new one (and resolves the host again)."""
        self.close()

    def close(self) -> None:
        """Close the socket; a request still waiting ends as timed out."""
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint[0].close()
