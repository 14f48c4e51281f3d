"""The stepped test wall clock: ``now()`` steps either way, monotonic time does not."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from clocks import ManualClock, SteppedClock, stepped_from_environment
from clocks.stepped import ENV_VAR, set_wall_step


@pytest.mark.parametrize("step_s", [3600.0, -600.0])
def test_only_the_wall_clock_steps(tmp_path: Path, clock: ManualClock, step_s: float) -> None:
    control = tmp_path / "wall.json"
    stepped = SteppedClock(clock, control, recheck_s=0)
    assert stepped.now() == clock.now()  # no file: no step
    before = stepped.monotonic()
    set_wall_step(control, step_s)
    assert stepped.now() - clock.now() == timedelta(seconds=step_s)
    assert stepped.monotonic() == before
    set_wall_step(control, 0.0)
    assert stepped.now() == clock.now()


def test_only_the_environment_variable_steps_a_clock(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert stepped_from_environment(clock) is clock
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "wall.json"))
    stepped = stepped_from_environment(clock)
    assert isinstance(stepped, SteppedClock) and stepped.inner is clock
