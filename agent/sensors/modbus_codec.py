"""Modbus read planning and value decoding: pure functions, no I/O.

Adjacent points are merged into one request (at most 125 registers or 2000 bits, the protocol's
limits), and register words are decoded with the profile's word and byte order.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from siteconfig.profiles import ModbusPoint, with_precision

MAX_REGISTERS = 125
MAX_BITS = 2000
_FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


@dataclass
class ReadBlock:
    """One Modbus request covering several points."""

    function: int
    start: int
    count: int
    points: list[tuple[str, ModbusPoint]] = field(default_factory=list)


def plan_reads(points: Mapping[str, ModbusPoint]) -> list[ReadBlock]:
    """Group points by function code and merge adjacent or overlapping addresses."""
    blocks: list[ReadBlock] = []
    for function in (1, 2, 3, 4):
        limit = MAX_BITS if function in (1, 2) else MAX_REGISTERS
        ordered = sorted(
            ((name, p) for name, p in points.items() if p.function == function),
            key=lambda item: item[1].address,
        )
        current: ReadBlock | None = None
        for name, point in ordered:
            end = point.address + point.words
            if (
                current is not None
                and point.address <= current.start + current.count
                and (end - current.start <= limit)
            ):
                current.count = max(current.count, end - current.start)
                current.points.append((name, point))
                continue
            current = ReadBlock(function, point.address, point.words, [(name, point)])
            blocks.append(current)
    return blocks


def decode_registers(point: ModbusPoint, words: Sequence[int]) -> float | bool:
    """Decode the point's words (exactly ``point.words`` of them)."""
    regs = [w & 0xFFFF for w in words]
    if point.byte_order == "little":
        regs = [((w & 0xFF) << 8) | (w >> 8) for w in regs]
    if point.word_order == "little":
        regs.reverse()
    raw = b"".join(w.to_bytes(2, "big") for w in regs)
    if point.bit is not None:
        return bool((int.from_bytes(raw, "big") >> point.bit) & 1)
    (value,) = struct.unpack(_FORMATS[point.type], raw)
    return with_precision(point, float(value) * point.scale + point.offset)


def decode_block(
    block: ReadBlock, values: Sequence[int] | Sequence[bool]
) -> dict[str, float | bool]:
    """Every point of a block from the block's registers or bits."""
    out: dict[str, float | bool] = {}
    for name, point in block.points:
        index = point.address - block.start
        if block.function in (1, 2):
            out[name] = bool(values[index])
        else:
            out[name] = decode_registers(
                point, [int(v) for v in values[index : index + point.words]]
            )
    return out
