"""The scenario library and runner as a tester uses them: ``shelterwatch sim run``."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulators.scenario.schema import ScenarioError, load_scenario
from simulators.stack import Stack

REPO = Path(__file__).resolve().parents[3]
LIBRARY = REPO / "simulators" / "scenarios"
SHIPPED = sorted(LIBRARY.glob("*.yaml"))


def _sim_run(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "sim", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
        check=False,
    )


def test_the_library_has_the_scenarios_testers_need() -> None:
    names = {load_scenario(path).name for path in SHIPPED}
    assert len(names) >= 12
    assert sum(load_scenario(path).fast for path in SHIPPED) >= 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("name: x\nsites: []\nexpectations: [{expect: delivered}]\n", "needs sites"),
        (
            "name: x\nsites: [SITE]\ncolour: red\nexpectations: [{expect: delivered}]\n",
            "colour: Extra inputs",
        ),
        (
            "name: x\nsites: [SITE]\nduration_s: 10\n"
            "expectations: [{expect: delivered, after_s: 5, within_s: 10}]\n",
            "after duration_s",
        ),
        (
            "name: x\nsites: [SITE]\nexpectations: [{expect: delivered}]\n"
            "timeline: [{at: 1, do: {action: contact, agent: nobody, point: door,"
            " active: true}}]\n",
            "timeline.0.do.agent: no site file has agent 'nobody' (scn-pm-lyon-0101)",
        ),
        (
            "name: x\nsites: [SITE]\nexpectations: [{expect: delivered}]\n"
            "timeline: [{at: 1, do: {action: set, agent: scn-pm-lyon-0101, device: ups-9,"
            " point: p, value: 1}}]\n",
            "timeline.0.do.device: agent scn-pm-lyon-0101 has no device 'ups-9' (contacts)",
        ),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_file_the_place_and_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text.replace("SITE", str(LIBRARY / "sites" / "pm-lyon-0101.yaml")))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_an_invalid_file_stops_the_run_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    done = _sim_run(str(SHIPPED[0]), str(bad), timeout_s=60)
    assert done.returncode == 2
    assert f"{bad}: expectations: Field required" in done.stderr
    assert "running for" not in done.stdout  # the valid file did not start either


@pytest.mark.timeout(300)
def test_the_fast_subset_passes_and_reports_junit(tmp_path: Path) -> None:
    junit = tmp_path / "scenarios.xml"
    done = _sim_run(
        "--fast",
        *map(str, SHIPPED),
        "--junit",
        str(junit),
        "--workdir",
        str(tmp_path / "w"),
        timeout_s=280,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert len(suites) == sum(load_scenario(p).fast for p in SHIPPED)
    assert all(s.get("failures") == "0" and s.get("errors") == "0" for s in suites)
    assert "PASS" in done.stdout and "scenario(s) passed" in done.stdout


@pytest.mark.timeout(120)
def test_an_expectation_that_is_not_met_fails_the_run_with_what_was_seen(tmp_path: Path) -> None:
    scenario = tmp_path / "never-opens.yaml"
    scenario.write_text(
        f"name: a ticket that never comes\nsites: [{LIBRARY / 'sites' / 'pm-lyon-0101.yaml'}]\n"
        "duration_s: 6\n"
        "expectations: [{expect: ticket, site: PM-LYO-0101, after_s: 1, within_s: 3}]\n"
    )
    junit = tmp_path / "out.xml"
    done = _sim_run(str(scenario), "--junit", str(junit), timeout_s=100)
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "seen: 0 matching" in done.stdout
    (case,) = ET.parse(junit).getroot().iter("testcase")
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "0 matching"


@pytest.mark.timeout(120)
def test_a_scenario_runs_against_a_broker_and_collector_given_on_the_command_line(
    stack: Stack, tmp_path: Path
) -> None:
    scenario = tmp_path / "door.yaml"
    scenario.write_text(
        f"name: door on a test bench\nsites: [{LIBRARY / 'sites' / 'pm-lyon-0101.yaml'}]\n"
        "duration_s: 20\n"
        "timeline: [{at: 1, do: {action: contact, agent: scn-pm-lyon-0101, point: door,"
        " active: true}}]\n"
        "expectations:\n"
        "  - {expect: alarm, site: PM-LYO-0101, alarm_type: door_open, after_s: 1, within_s: 10}\n"
        "  - {expect: delivered, after_s: 2, within_s: 15}\n"
    )
    external = [
        "--broker", f"127.0.0.1:{stack.broker.port}", "--collector", stack.base_url,
        "--token", stack.noc_token, "--db", stack.db_url,
    ]  # fmt: skip
    done = _sim_run(str(scenario), *external, "--workdir", str(tmp_path / "w"), timeout_s=100)
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"using the collector at {stack.base_url}" in done.stdout
    # The runner started only the agent: the bench's collector holds the alarm.
    alarms = stack.api("GET", "/api/v1/alarms?site_id=PM-LYO-0101&alarm_type=door_open").json()
    assert alarms["items"]
    jumps = _sim_run(str(LIBRARY / "humidity.yaml"), *external, timeout_s=60)
    assert jumps.returncode == 1
    assert "needs the runner's own collector" in jumps.stdout
