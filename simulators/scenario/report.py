"""The pass/fail report of scenario runs: text for people, JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from simulators.scenario.checks import Verdict
from simulators.scenario.runner import ScenarioResult


def text_report(results: Sequence[ScenarioResult]) -> str:
    """One block per scenario, one line per expectation, and a total."""
    lines: list[str] = []
    for result in results:
        status = "PASSED" if result.passed else "FAILED"
        lines.append(f"{status}  {result.name}  ({result.path}, {result.duration_s:.0f} s)")
        if result.error:
            lines.append(f"    error: {result.error}")
        for outcome in result.outcomes:
            mark = "ok  " if outcome.verdict is Verdict.PASSED else "FAIL"
            when = f" at +{outcome.at_s:.0f} s" if outcome.at_s is not None else ""
            lines.append(f"    {mark} {outcome.title}{when}")
            if outcome.verdict is not Verdict.PASSED:
                lines.append(f"         seen: {outcome.seen}")
        if not result.passed and result.workdir is not None:
            lines.append(f"    logs: {result.workdir / 'logs'}")
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} scenario(s) passed")
    return "\n".join(lines)


def write_junit(results: Sequence[ScenarioResult], path: Path) -> None:
    """A ``testsuites`` document: one suite per scenario, one case per expectation."""
    root = ET.Element("testsuites")
    for result in results:
        failures = sum(o.verdict is not Verdict.PASSED for o in result.outcomes)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=result.name,
            tests=str(len(result.outcomes)),
            failures=str(failures),
            errors="1" if result.error else "0",
            time=f"{result.duration_s:.1f}",
            file=str(result.path),
        )
        if result.error:
            case = ET.SubElement(
                suite, "testcase", classname=result.name, name="setup and timeline"
            )
            ET.SubElement(case, "error", message=result.error)
        for outcome in result.outcomes:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=result.name,
                name=outcome.title,
                time=f"{outcome.at_s or 0:.1f}",
            )
            if outcome.verdict is not Verdict.PASSED:
                ET.SubElement(case, "failure", message=outcome.seen)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
