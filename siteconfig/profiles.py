"""Device profiles: what each point of an equipment model means, as data."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol import Severity

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactAlarm(_Strict):
    """An alarm raised while a contact is in a given position."""

    alarm_type: Ident
    severity: Severity
    # The switch position that means trouble: "open" for a door contact closed when shut,
    # "closed" for a fire relay that closes on alarm.
    when: Literal["open", "closed"]
    raise_delay_s: float = Field(default=0.0, ge=0)
    clear_delay_s: float = Field(default=0.0, ge=0)


class ContactPoint(_Strict):
    """A dry contact read on a GPIO input."""

    type: Literal["contact"] = "contact"
    pull_up: bool = True
    debounce_ms: int = Field(default=50, ge=0, le=60_000)
    alarm: ContactAlarm


class GpioProfile(_Strict):
    """A set of contacts wired to GPIO inputs."""

    name: Ident
    kind: Literal["gpio"]
    description: str = ""
    points: dict[Ident, ContactPoint] = Field(min_length=1)


class ThresholdAlarm(_Strict):
    """Raise above (or below) a threshold, clear past the hysteresis bound."""

    alarm_type: Ident
    severity: Severity
    direction: Literal["above", "below"]
    raise_at: float
    clear_at: float
    raise_delay_s: float = Field(default=0.0, ge=0)
    clear_delay_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdAlarm:
        ok = (
            self.clear_at <= self.raise_at
            if self.direction == "above"
            else self.clear_at >= self.raise_at
        )
        if not ok:
            raise ValueError(
                f"clear_at {self.clear_at} must be on the safe side of raise_at {self.raise_at}"
                f" for direction {self.direction}"
            )
        return self


class BitAlarm(_Strict):
    """An alarm raised while a coil, discrete input or register bit has a given value."""

    alarm_type: Ident
    severity: Severity
    when: bool = True
    raise_delay_s: float = Field(default=0.0, ge=0)
    clear_delay_s: float = Field(default=0.0, ge=0)


class Telemetry(_Strict):
    """How often a value is sent, and the change below which it is not."""

    period_s: float = Field(default=60.0, gt=0)
    deadband: float = Field(default=0.0, ge=0)


class ModbusPoint(_Strict):
    """One value read over Modbus: where it is and how to decode it."""

    function: Literal[1, 2, 3, 4]  # coils, discrete inputs, holding, input registers
    address: int = Field(ge=0, le=65535)
    type: Literal["bool", "int16", "uint16", "int32", "uint32", "float32"] = "uint16"
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = Field(default=None, ge=0, le=15)
    unit: str | None = Field(default=None, max_length=16)
    alarm: ThresholdAlarm | BitAlarm | None = None
    telemetry: Telemetry | None = None
    # A point every device of this model must serve: one that does not raises the device's
    # profile_mismatch alarm. Any other point a device does not serve is merely unknown.
    required: bool = False
    # Decimals a value is given with (default: those of scale and offset; a float32, its 7
    # significant digits): 61.2, never 61.20000076293945.
    precision: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _consistent(self) -> ModbusPoint:
        is_bit = self.function in (1, 2) or self.bit is not None
        if self.function in (1, 2) and self.type != "bool":
            raise ValueError("coils and discrete inputs (functions 1, 2) are of type bool")
        if is_bit and isinstance(self.alarm, ThresholdAlarm):
            raise ValueError("a bit has a bit alarm (when: true/false), not a threshold")
        if not is_bit and isinstance(self.alarm, BitAlarm):
            raise ValueError("a register value has a threshold alarm, not a bit alarm")
        return self

    @property
    def words(self) -> int:
        """Registers (or bits) occupied."""
        return 2 if self.type in ("int32", "uint32", "float32") else 1

    @property
    def is_bit(self) -> bool:
        """True for coils, discrete inputs and register bits."""
        return self.function in (1, 2) or self.bit is not None


class ModbusProfile(_Strict):
    """An equipment model read over Modbus (TCP or RTU)."""

    name: Ident
    kind: Literal["modbus"]
    description: str = ""
    points: dict[Ident, ModbusPoint] = Field(min_length=1)


NumericOid = Annotated[str, Field(pattern=r"^1(\.(0|[1-9][0-9]{0,9})){1,127}$")]


class OnlyIf(_Strict):
    """A condition on another point of the same device (the same row, for a table column)."""

    point: Ident
    equals: list[int] = Field(min_length=1)


class EqualsAlarm(_Strict):
    """An alarm raised while an enumerated value is one of ``equals`` (e.g. battery low=3),
    optionally only while another point's value is one of ``only_if.equals`` (an interface
    down counts only if it is administratively up)."""

    alarm_type: Ident
    severity: Severity
    equals: list[int] = Field(min_length=1)
    raise_delay_s: float = Field(default=0.0, ge=0)
    clear_delay_s: float = Field(default=0.0, ge=0)
    only_if: OnlyIf | None = None

    def as_bit(self) -> BitAlarm:
        """The same alarm, on the boolean ``value in equals``."""
        return BitAlarm(
            alarm_type=self.alarm_type,
            severity=self.severity,
            when=True,
            raise_delay_s=self.raise_delay_s,
            clear_delay_s=self.clear_delay_s,
        )


class SnmpPoint(_Strict):
    """One value read over SNMP by numeric OID (no MIB files at run time)."""

    oid: NumericOid
    type: Literal["integer", "gauge", "counter", "timeticks", "string"] = "integer"
    # A column walked under ``oid``: one value per row, named ``<point>.<index>``.
    table: bool = False
    # A counter reported as its rate per second between two polls (scale applies first:
    # scale 8 turns octets into bits); a counter going backwards (wrap, reboot) gives no value.
    rate: bool = False
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = Field(default=None, max_length=16)
    alarm: ThresholdAlarm | EqualsAlarm | None = None
    telemetry: Telemetry | None = None
    # As for ModbusPoint: missing, a required point raises profile_mismatch.
    required: bool = False
    # As for ModbusPoint: decimals a value is given with (default: those of scale, offset).
    precision: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _consistent(self) -> SnmpPoint:
        if self.type == "string" and (self.alarm is not None or self.telemetry is not None):
            raise ValueError("a string point carries no alarm and no telemetry")
        if self.rate and self.type != "counter":
            raise ValueError("rate applies to counters only")
        return self


class SnmpTrap(_Strict):
    """A notification (snmpTrapOID.0) that raises or clears an alarm."""

    trap_oid: NumericOid
    alarm_type: Ident
    severity: Severity
    transition: Literal["raised", "cleared"]
    point: Ident
    # Only when this varbind has this value (e.g. the alarm id of upsTrapAlarmEntryAdded).
    varbind_oid: NumericOid | None = None
    varbind_equals: str | None = None
    # A raised alarm with no clearing trap and no polled point to reconcile it clears this
    # long after the last trap that raised it.
    expire_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _condition(self) -> SnmpTrap:
        if (self.varbind_oid is None) != (self.varbind_equals is None):
            raise ValueError("varbind_oid and varbind_equals go together")
        return self


class SnmpProfile(_Strict):
    """An equipment model read over SNMP, and the traps it sends."""

    name: Ident
    kind: Literal["snmp"]
    description: str = ""
    points: dict[Ident, SnmpPoint] = Field(min_length=1)
    traps: list[SnmpTrap] = Field(default_factory=list)

    @model_validator(mode="after")
    def _traps_clear(self) -> SnmpProfile:
        # Every alarm a trap raises has a way to clear: a clearing trap, the poll of the same
        # point (its alarm of the same type), or an expiry.
        for index, trap in enumerate(self.traps):
            if trap.transition != "raised" or trap.expire_s is not None:
                continue
            key = (trap.point, trap.alarm_type)
            cleared_by_trap = any(
                (t.point, t.alarm_type) == key and t.transition == "cleared" for t in self.traps
            )
            polled = self.points.get(trap.point)
            cleared_by_poll = (
                polled is not None
                and polled.alarm is not None
                and polled.alarm.alarm_type == trap.alarm_type
            )
            if not (cleared_by_trap or cleared_by_poll):
                raise ValueError(
                    f"traps[{index}] raises {trap.alarm_type} on {trap.point}, which nothing"
                    " clears: add a clearing trap, an alarm of that type on a polled point"
                    f" {trap.point}, or expire_s"
                )
        return self

    @model_validator(mode="after")
    def _conditions_name_points(self) -> SnmpProfile:
        for name, point in self.points.items():
            condition = point.alarm.only_if if isinstance(point.alarm, EqualsAlarm) else None
            if condition is None:
                continue
            other = self.points.get(condition.point)
            if other is None:
                raise ValueError(f"points.{name}.alarm.only_if: no point {condition.point!r}")
            if other.table != point.table:
                raise ValueError(
                    f"points.{name}.alarm.only_if: {condition.point} must be a table column"
                    " exactly when this point is one (the condition is read on the same row)"
                )
        return self


Profile = Annotated[GpioProfile | ModbusProfile | SnmpProfile, Field(discriminator="kind")]


def with_precision(point: ModbusPoint | SnmpPoint, value: float) -> float:
    """A decoded value rounded as the profile means it: ``precision`` decimals; or those of
    ``scale`` and ``offset`` (0.1 -> 1); or, for a float32, its 7 significant digits."""
    if point.precision is not None:
        return round(value, point.precision)
    if point.type == "float32":
        return float(f"{value:.7g}")
    return round(value, max(_decimals(point.scale), _decimals(point.offset)))


def _decimals(number: float) -> int:
    text = f"{number:.10f}".rstrip("0")
    return len(text.split(".", 1)[1]) if "." in text else 0
