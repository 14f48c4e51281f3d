"""Modbus TCP and RTU through pymodbus (async): only the protocol, no meaning."""

from __future__ import annotations

from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from agent.sensors.errors import DeviceError
from agent.sensors.modbus_codec import ReadBlock, decode_block, plan_reads
from siteconfig.profiles import ModbusProfile
from siteconfig.site import ModbusDevice, ModbusTcp

# The exception code of a device that has no such register or bit.
_ILLEGAL_ADDRESS = 2


class _IllegalAddress(DeviceError):
    """The device answered that an address is not one of its own."""


class ModbusReader:
    """Reads every point of one device, in as few requests as the addresses allow."""

    def __init__(self, device: ModbusDevice, profile: ModbusProfile) -> None:
        self._device = device
        self.blocks = plan_reads(profile.points)
        transport = device.transport
        # Retries are ours (the poller backs off between polls); pymodbus only times out. Its
        # own background reconnect is off too: it would redial behind the poller's backoff, and
        # a redial cancelled by close() mid-connect leaves a socket open.
        client: Any
        if isinstance(transport, ModbusTcp):
            client = AsyncModbusTcpClient(
                transport.host,
                port=transport.port,
                timeout=device.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        else:
            client = AsyncModbusSerialClient(
                transport.port,
                baudrate=transport.baudrate,
                parity=transport.parity,
                stopbits=transport.stopbits,
                timeout=device.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        self._client = client

    async def read(self) -> dict[str, float | bool]:
        """One value per point the device serves (an address it calls illegal leaves its
        point out); ``DeviceError`` says what failed."""
        if not self._client.connected and not await self._client.connect():
            raise DeviceError(f"cannot connect to {self._describe()}")
        values: dict[str, float | bool] = {}
        for block in self.blocks:
            try:
                values.update(await self._read_block(block))
            except _IllegalAddress:
                if len(block.points) == 1:
                    continue  # the device answered: this point is not there
                # One absent register fails a merged read: each point then on its own.
                for name, point in block.points:
                    try:
                        values.update(await self._read_block(plan_reads({name: point})[0]))
                    except _IllegalAddress:
                        continue
        return values

    async def _read_block(self, block: ReadBlock) -> dict[str, float | bool]:
        method = {
            1: self._client.read_coils,
            2: self._client.read_discrete_inputs,
            3: self._client.read_holding_registers,
            4: self._client.read_input_registers,
        }[block.function]
        try:
            result = await method(block.start, count=block.count, device_id=self._device.unit_id)
        except ModbusException as err:
            self._client.close()
            raise DeviceError(f"{self._describe()}: {err}") from err
        if result.isError() and getattr(result, "exception_code", None) == _ILLEGAL_ADDRESS:
            raise _IllegalAddress(f"{self._describe()}: no {block.function}/{block.start}")
        if result.isError():
            raise DeviceError(
                f"{self._describe()}: function {block.function} at {block.start}: {result}"
            )
        data = result.bits if block.function in (1, 2) else result.registers
        return decode_block(block, data)

    def _describe(self) -> str:
        t = self._device.transport
        where = f"{t.host}:{t.port}" if isinstance(t, ModbusTcp) else t.port
        return f"modbus {where} unit {self._device.unit_id}"

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
