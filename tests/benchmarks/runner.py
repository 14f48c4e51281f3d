"""Running a benchmark as its users do, for the smoke tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, *args: str, timeout_s: float = 120) -> dict[str, Any]:
    """``python -m benchmarks.<module> args``: it must succeed; its last line is the figures."""
    run = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return figures
