"""The test clock: every reader of one control file jumps together, and a recent jump is
reported so presence does not take it for silence."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clocks import SystemClock, WarpClock, clock_from_environment, jumped_within
from clocks.warp import ENV_VAR, advance


def test_every_reader_of_the_control_file_jumps_together(tmp_path: Path) -> None:
    control = tmp_path / "clock.json"
    agent, collector = WarpClock(control, recheck_s=0), WarpClock(control, recheck_s=0)
    assert abs(agent.now() - datetime.now(UTC)) < timedelta(seconds=1)  # no file: no jump
    before = collector.monotonic()
    advance(control, 48 * 3600)
    advance(control, 60)
    for clock in (agent, collector):
        assert clock.now() - datetime.now(UTC) > timedelta(hours=48, seconds=59)
    assert collector.monotonic() - before >= 48 * 3600 + 60
    assert agent.jumped_within(10) == 48 * 3600 + 60
    assert jumped_within(agent, 10) == 48 * 3600 + 60


def test_an_old_jump_is_no_longer_an_excuse(tmp_path: Path) -> None:
    control = tmp_path / "clock.json"
    advance(control, 3600)
    clock = WarpClock(control, recheck_s=0)
    assert clock.jumped_within(0.0) == 0.0  # made before "now minus nothing"
    assert clock.jumped_within(60) == 3600


def test_the_real_clock_never_jumps() -> None:
    assert jumped_within(SystemClock(), 3600) == 0.0


def test_time_only_moves_forward(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="forward"):
        advance(tmp_path / "clock.json", -1)


def test_only_the_environment_variable_turns_the_test_clock_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert isinstance(clock_from_environment(), SystemClock)
    monkeypatch.setenv(ENV_VAR, os.fspath(tmp_path / "clock.json"))
    assert isinstance(clock_from_environment(), WarpClock)
