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


Profile = GpioProfile
