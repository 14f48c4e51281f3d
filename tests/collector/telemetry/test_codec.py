"""Packed samples decode to the very microseconds and floats they were given, appended in any
number of pieces; regular series take a few bytes a sample."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from collector.telemetry import codec
from collector.telemetry.service import from_us, to_us

DAY = to_us(datetime(2026, 1, 5, tzinfo=UTC))


def _bits(values: list[float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


@given(
    st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.floats(allow_nan=True, width=64)),
        max_size=60,
    ),
    st.integers(0, 60),
)
def test_any_samples_come_back_exactly(samples: list[tuple[int, float]], cut: int) -> None:
    first, tail = codec.append(codec.start(DAY), samples[:cut])
    rest, _ = codec.append(tail, samples[cut:])
    back = codec.decode(DAY, first + rest)
    assert [t for t, _ in back] == [t for t, _ in samples]
    # Bit for bit: NaN, -0.0 and every last digit included.
    assert _bits([v for _, v in back]) == _bits([v for _, v in samples])


def test_a_scaled_sensor_every_five_minutes_takes_a_few_bytes_a_sample() -> None:
    # What a Modbus register scaled by 0.1 gives, polled with millisecond jitter.
    samples = [
        (DAY + i * 300_000_000 + (i * 7919 % 1000) * 1000, (215 + i % 9) * 0.1) for i in range(288)
    ]
    data, _ = codec.append(codec.start(DAY), samples)
    assert codec.decode(DAY, data) == samples
    assert len(data) / len(samples) <= 5


def test_microseconds_convert_both_ways() -> None:
    at = datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=UTC)
    assert from_us(to_us(at)) == at
    assert to_us(at + timedelta(microseconds=1)) - to_us(at) == 1
