"""Samples of one series packed into bytes: exact, appendable, a few bytes a sample.

A chunk holds one series' samples of one UTC day, each encoded against the one before it:

- the time as the change of its step (delta of delta, in microseconds), zig-zag varint: a
  sample every 5 minutes with millisecond jitter costs 2 to 3 bytes, a perfectly regular one 1;
- the value as a short decimal (``m / 10**k``, k <= 6) written as the change of ``m`` from the
  previous value at the same scale, with an optional distance in units in the last place for
  values a scale made not quite decimal (``219 * 0.1 = 21.900000000000002``); anything else
  (NaN, infinities, -0.0, very large or very precise values) as the 8 raw bytes.

Nothing is rounded: each encoding is exact by construction (a short decimal is used only if
it divides back to the very float; the distance in units in the last place is the exact
difference of the two floats' bits), so a sample decodes to the very float, NaN and -0.0
included, and the very microsecond it was given. A chunk can be extended knowing only its
``Tail`` (last time, last step, last value), so appending never reads the bytes written.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

_SCALES = tuple(10**k for k in range(7))
_RAW = 7  # the value's low 3 bits: a scale 0..6, or 7 for 8 raw bytes
_MAX_ULPS = 1 << 16
_LIMIT = 1e15  # beyond this, m / 10**k would not be exact anyway
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<q")


@dataclass(frozen=True)
class Tail:
    """Where a chunk's encoding stands: the last sample's time and value, and the last step."""

    ts_us: int
    step_us: int
    value: float


def start(day_start_us: int) -> Tail:
    """The state of an empty chunk starting at ``day_start_us``."""
    return Tail(day_start_us, 0, 0.0)


def _zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def _unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def _varint(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _bits(x: float) -> int:
    return int(_BITS.unpack(_DOUBLE.pack(x))[0])


def _float(bits: int) -> float:
    return float(_DOUBLE.unpack(_BITS.pack(bits))[0])


def _base(previous: float, scale: int) -> int:
    """The previous value on a scale, the same on both sides (any float in, an int out)."""
    if math.isfinite(previous) and abs(previous) < _LIMIT:
        return round(previous * scale)
    return 0


def _value(value: float, previous: float, out: bytearray) -> None:
    if math.isfinite(value) and abs(value) < _LIMIT and not (value == 0 and _bits(value) < 0):
        near: tuple[int, int, int] | None = None
        for k, scale in enumerate(_SCALES):
            m = round(value * scale)
            candidate = m / scale
            if candidate == value:
                _varint((_zigzag(m - _base(previous, scale)) << 4) | k, out)
                return
            if near is None and candidate != 0 and (candidate > 0) == (value > 0):
                ulps = _bits(value) - _bits(candidate)
                if abs(ulps) < _MAX_ULPS:
                    near = (k, m, ulps)
        if near is not None:
            k, m, ulps = near
            _varint((_zigzag(m - _base(previous, _SCALES[k])) << 4) | 8 | k, out)
            _varint(_zigzag(ulps), out)
            return
    _varint(_RAW, out)
    out += _DOUBLE.pack(value)


def append(tail: Tail, samples: list[tuple[int, float]]) -> tuple[bytes, Tail]:
    """The bytes that extend a chunk at ``tail`` with ``samples`` ((microseconds, value), in any
    order), and the chunk's new tail."""
    out = bytearray()
    ts, step, previous = tail.ts_us, tail.step_us, tail.value
    for at, value in samples:
        new_step = at - ts
        _varint(_zigzag(new_step - step), out)
        ts, step = at, new_step
        _value(value, previous, out)
        previous = value
    return bytes(out), Tail(ts, step, previous)


def decode(day_start_us: int, data: bytes) -> list[tuple[int, float]]:
    """Every (microseconds, value) of a chunk, in the order written."""
    samples: list[tuple[int, float]] = []
    ts, step, previous = day_start_us, 0, 0.0
    i, size = 0, len(data)
    while i < size:
        z = shift = 0
        while True:
            byte = data[i]
            i += 1
            z |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        step += _unzigzag(z)
        ts += step
        z = shift = 0
        while True:
            byte = data[i]
            i += 1
            z |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        k = z & 7
        if k == _RAW:
            value = float(_DOUBLE.unpack_from(data, i)[0])
            i += 8
        else:
            scale = _SCALES[k]
            value = (_base(previous, scale) + _unzigzag(z >> 4)) / scale
            if z & 8:
                u = shift = 0
                while True:
                    byte = data[i]
                    i += 1
                    u |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                value = _float(_bits(value) + _unzigzag(u))
        samples.append((ts, value))
        previous = value
    return samples
