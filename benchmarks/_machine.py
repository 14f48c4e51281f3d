"""Describe the machine a benchmark ran on (printed before the figures)."""

from __future__ import annotations

import os
import platform
import resource
import sys
from pathlib import Path


def describe() -> dict[str, object]:
    """CPU model, cores, memory, Python and OS."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": mem_gib,
        "python": sys.version.split()[0],
        "os": f"{platform.system()} {platform.release()}",
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def print_machine() -> None:
    """Print the machine description as one line."""
    print("machine:", describe(), flush=True)


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of a process (default: this one) in MiB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
