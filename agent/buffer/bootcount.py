"""The boot counter: incremented at each agent start, kept beside (not in) the outbox.

It lives in its own file so it survives an outbox recovery: the collector orders births and
Wills by boot, also across streams.
"""

from __future__ import annotations

import os
from pathlib import Path


def next_boot(path: Path) -> int:
    """Increment and persist the boot counter atomically; return the new value."""
    try:
        current = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        current = 0
    value = current + 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        fh.write(f"{value}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return value
