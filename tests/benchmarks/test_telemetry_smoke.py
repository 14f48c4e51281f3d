"""The telemetry storage benchmark runs, and what it measures is what it says (a small slice)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_telemetry_benchmark_writes_rolls_up_queries_and_prunes() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.telemetry", "--sites", "20", "--hours", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    # 20 sites x 3 points x one sample a minute for 3 hours.
    assert figures["samples"] == 20 * 3 * 180
    # Every complete hour of every series rolled up, each raw query returning the whole slice.
    assert figures["hourly_rows"] == 20 * 3 * 3
    assert figures["raw_series_points"] == 180
    assert figures["hourly_series_points"] == 3
    assert figures["samples_left_after_prune"] == 0
    assert figures["dedup_keys_left_after_prune"] == 0
    assert figures["bytes_per_sample"] > 0
