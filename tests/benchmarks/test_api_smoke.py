"""The API benchmark still runs against the current schema (a small load, a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_benchmark_loads_drives_and_reports() -> None:
    # A new NOT NULL column once broke its loader unnoticed until the benchmark was run again.
    run = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.api"),
            *("--sites", "30", "--alarms", "200", "--tickets", "50"),
            *("--rate", "20", "--duration", "2"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0
    assert figures["ticket_list"]["requests"] > 0
