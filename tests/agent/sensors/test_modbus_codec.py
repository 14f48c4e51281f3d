"""Modbus decoding against hand-computed words (never our own encoder) and read planning."""

from __future__ import annotations

import pytest

from agent.sensors.modbus_codec import decode_registers, plan_reads
from siteconfig.profiles import ModbusPoint


def point(**kw: object) -> ModbusPoint:
    return ModbusPoint.model_validate({"function": 3, "address": 0, **kw})


@pytest.mark.parametrize(
    ("words", "word_order", "byte_order"),
    [
        ([0x41BC, 0x0000], "big", "big"),  # ABCD: 23.5 = 0x41BC0000
        ([0x0000, 0x41BC], "little", "big"),  # CDAB
        ([0xBC41, 0x0000], "big", "little"),  # BADC
        ([0x0000, 0xBC41], "little", "little"),  # DCBA
    ],
)
def test_float32_23_5_in_every_order(words: list[int], word_order: str, byte_order: str) -> None:
    p = point(type="float32", word_order=word_order, byte_order=byte_order)
    assert decode_registers(p, words) == 23.5


@pytest.mark.parametrize(
    ("kind", "words", "expected"),
    [
        ("int16", [0xFFFB], -5.0),
        ("uint16", [0xFFFB], 65531.0),
        ("int32", [0xFFFF, 0xFFFE], -2.0),
        ("uint32", [0x0001, 0x1170], 70000.0),
    ],
)
def test_integer_types(kind: str, words: list[int], expected: float) -> None:
    assert decode_registers(point(type=kind), words) == expected


def test_scale_offset_and_bits() -> None:
    assert decode_registers(
        point(type="int16", scale=0.1, offset=-40.0), [0x01F4]
    ) == pytest.approx(10.0)
    assert decode_registers(point(bit=3), [0b1000]) is True
    assert decode_registers(point(bit=2), [0b1000]) is False


def test_adjacent_registers_are_merged_and_capped_at_125_words() -> None:
    points = {f"r{i}": point(address=i) for i in range(130)}
    points["f"] = point(address=200, type="float32")
    points["c"] = ModbusPoint(function=1, address=5, type="bool")
    blocks = plan_reads(points)
    assert [(b.function, b.start, b.count) for b in blocks] == [
        (1, 5, 1),
        (3, 0, 125),
        (3, 125, 5),
        (3, 200, 2),
    ]


def test_profile_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="bool"):
        ModbusPoint.model_validate({"function": 1, "address": 0, "type": "uint16"})
    with pytest.raises(ValueError, match="not a threshold"):
        ModbusPoint.model_validate(
            {
                "function": 2,
                "address": 0,
                "type": "bool",
                "alarm": {
                    "alarm_type": "x",
                    "severity": "major",
                    "direction": "above",
                    "raise_at": 1,
                    "clear_at": 0,
                },
            }
        )


@pytest.mark.parametrize(
    ("point", "words", "expected"),
    [
        # A float32 holds about 7 significant digits: 61.2, not 61.20000076293945.
        ({"type": "float32"}, [0x4274, 0xCCCD], 61.2),
        # Scaled integers keep the decimals of their scale: 0.3, not 0.30000000000000004.
        ({"type": "uint16", "scale": 0.1}, [3], 0.3),
        ({"type": "uint16", "scale": 0.1, "precision": 0}, [3], 0.0),
        ({"type": "float32", "precision": 3}, [0x4274, 0xCCCD], 61.2),
    ],
)
def test_values_have_the_profile_precision(
    point: dict[str, object], words: list[int], expected: float
) -> None:
    decoded = decode_registers(
        ModbusPoint.model_validate({"function": 3, "address": 0, **point}), words
    )
    assert decoded == expected and repr(decoded) == repr(expected)
