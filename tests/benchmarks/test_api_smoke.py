"""The API benchmark still runs against the current schema (a small load, a few seconds)."""

from __future__ import annotations

from tests.benchmarks.runner import run_benchmark


def test_the_api_benchmark_loads_drives_and_reports() -> None:
    # A new NOT NULL column once broke its loader unnoticed until the benchmark was run again.
    figures = run_benchmark(
        "api",
        *("--sites", "30", "--alarms", "200", "--tickets", "50"),
        *("--rate", "20", "--duration", "2"),
    )
    assert figures["errors"] == 0
    assert figures["ticket_list"]["requests"] > 0
