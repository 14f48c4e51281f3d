"""The scenario runner owns what it starts: killed with SIGKILL mid-scenario, it leaves no broker,
collector, gateway, agent or device daemon behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import process_tree, survivors

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]
# Every kind of child a scenario starts: a GPIO, Modbus TCP and RTU, SNMP agent.
SCENARIO = Path(__file__).resolve().parents[3] / "simulators/scenarios/modbus-unplugged.yaml"


def test_a_runner_killed_mid_scenario_leaves_no_process_behind(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "cli", "sim", "run", str(SCENARIO), "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as runner:
        assert runner.stdout is not None
        for line in runner.stdout:
            if "running for" in line:
                break
        children = process_tree(runner.pid)
        runner.kill()
        runner.wait()
    commands = " ".join(children.values())
    for part in ("mosquitto", "collector run", "collector.ingest.gateway", "agent run", "snmpd"):
        assert part in commands
    assert survivors(children, within_s=5) == {}
