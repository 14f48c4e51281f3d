"""SNMP v2c/v3 polling: GET for scalars, GETBULK walks for table columns.

v2c goes through pysnmp's message layer alone (``v2c``); v3 through pysnmp 7's engine
(``v3``), imported only when a v3 device is polled because the engine, its security
modules and cryptography cost a v2c-only site about 15 MiB of a Pi's memory.
"""

from __future__ import annotations

from typing import Any

from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from agent.sensors.errors import DeviceError
from agent.sensors.snmp.session import Response, SnmpSession, parse_oid, require_privacy
from siteconfig.profiles import SnmpPoint, SnmpProfile, with_precision
from siteconfig.site import SnmpDevice, SnmpV2c

# A GET carries at most this many OIDs, well under any agent's PDU size limit.
_GET_BATCH = 20
# The error-status of a v1-style answer to a GET naming an object the agent does not serve.
_NO_SUCH_NAME = "noSuchName"


def open_session(device: SnmpDevice) -> SnmpSession:
    """The protocol session a device's credentials call for."""
    if isinstance(device.auth, SnmpV2c):
        from agent.sensors.snmp.v2c import V2cSession

        return V2cSession(device)
    from agent.sensors.snmp.v3 import V3Session

    return V3Session(device)


def require_support(device: SnmpDevice) -> None:
    """Raise ``DeviceError`` now if this device's SNMP version cannot work in this install."""
    if not isinstance(device.auth, SnmpV2c):
        require_privacy()


def decode(point: SnmpPoint, raw: Any) -> float | str:
    """A varbind value as the profile means it: scaled number, or text."""
    if point.type == "string":
        return str(raw.prettyPrint()) if hasattr(raw, "prettyPrint") else str(raw)
    try:
        number = float(int(raw))
    except (TypeError, ValueError) as err:
        raise DeviceError(f"OID {point.oid}: {raw!r} is not a number") from err
    return with_precision(point, number * point.scale + point.offset)


class SnmpReader:
    """Reads every point of one device: scalars by GET, ``table`` columns by GETBULK walk."""

    def __init__(self, device: SnmpDevice, profile: SnmpProfile) -> None:
        self._device = device
        self._profile = profile
        self._session = open_session(device)
        self._scalars = {n: p for n, p in profile.points.items() if not p.table}
        self._tables = {n: p for n, p in profile.points.items() if p.table}

    async def read(self) -> dict[str, float | str]:
        """One value per scalar point, one per table row (``<point>.<index>``); a point the
        device does not serve (no such object or instance, an empty column) has none."""
        values: dict[str, float | str] = {}
        names = list(self._scalars)
        try:
            for start in range(0, len(names), _GET_BATCH):
                batch = names[start : start + _GET_BATCH]
                values.update(await self._get(batch))
            for name, point in self._tables.items():
                values.update(await self._walk(name, point))
        except BaseException:
            self._session.reset()  # a device that failed is met afresh next time
            raise
        return values

    async def _get(self, names: list[str]) -> dict[str, float | str]:
        """The values of the points the device serves; one it does not serve is left out
        (the point is unknown, the device answered)."""
        response = await self._session.get([self._scalars[n].oid for n in names])
        if response.status == _NO_SUCH_NAME and len(names) > 1:
            # SNMPv1-style agents (and proxies) refuse a whole GET for one absent object:
            # asked one by one, the others are read all the same.
            out: dict[str, float | str] = {}
            for name in names:
                out.update(await self._get([name]))
            return out
        if response.status == _NO_SUCH_NAME:
            return {}
        self._check(response, where=f"at index {response.index}")
        out = {}
        for name, (_, raw) in zip(names, response.var_binds, strict=True):
            if isinstance(raw, NoSuchObject | NoSuchInstance | EndOfMibView):
                continue
            out[name] = decode(self._scalars[name], raw)
        return out

    async def _walk(self, name: str, point: SnmpPoint) -> dict[str, float | str]:
        response = await self._session.walk(point.oid, self._device.max_repetitions)
        self._check(response, where=f"walking {point.oid}")
        prefix = parse_oid(point.oid)
        return {
            f"{name}.{'.'.join(str(x) for x in oid[len(prefix) :])}": decode(point, raw)
            for oid, raw in response.var_binds
        }

    def _check(self, response: Response, *, where: str) -> None:
        if response.error is not None:
            raise DeviceError(f"{self._describe()}: {self._explain(response.error)}")
        if response.status is not None:
            raise DeviceError(f"{self._describe()}: {response.status} {where}")

    def _explain(self, indication: str) -> str:
        if "timeout" not in indication.lower():
            return indication  # e.g. "Wrong SNMP PDU digest" (v3 auth key), "Unknown USM user"
        # Agents drop a wrong community or v3 privacy key without a word: say so.
        suspect = "community" if isinstance(self._device.auth, SnmpV2c) else "v3 privacy key"
        return f"no answer within {self._device.timeout_s} s (device down, or wrong {suspect})"

    def _describe(self) -> str:
        return f"snmp {self._device.host}:{self._device.port}"

    def close(self) -> None:
        """Release the session's sockets."""
        self._session.close()
