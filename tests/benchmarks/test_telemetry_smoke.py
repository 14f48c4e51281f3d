"""The telemetry storage benchmark runs, and what it measures is what it says (a small slice)."""

from __future__ import annotations

from tests.benchmarks.runner import run_benchmark


def test_the_telemetry_benchmark_writes_rolls_up_queries_and_prunes() -> None:
    figures = run_benchmark(
        "telemetry", "--sites", "20", "--points", "3", "--interval-s", "60", "--hours", "3"
    )
    # 20 sites x 3 points x one sample a minute for 3 hours.
    assert figures["samples"] == 20 * 3 * 180
    # Every complete hour of every series rolled up, each raw query returning the whole slice.
    assert figures["hourly_rows"] == 20 * 3 * 3
    assert figures["raw_series_points"] == 180
    assert figures["hourly_series_points"] == 3
    assert figures["samples_left_after_prune"] == 0
    assert figures["dedup_keys_left_after_prune"] == 0
    assert figures["bytes_per_sample"] > 0
