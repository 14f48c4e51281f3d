"""Outbox settings, as they appear under ``outbox:`` in a site file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class OutboxSettings(BaseModel):
    """Where the durable outbox lives and how big it may grow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # On a Pi with a read-only root this is on the data partition.
    path: Path = Path("/var/lib/shelterwatch/outbox.db")
    max_mib: float = Field(default=256.0, gt=0)
    # Alarm transitions that always fit, whatever telemetry does.
    alarm_reserve: int = Field(default=100_000, ge=1000)
    telemetry_commit_interval_s: float = Field(default=1.0, gt=0, le=1.0)
    # While the file cannot be written (full, read-only, failing), up to this many events are
    # kept in memory and sent on the volatile stream (about 1 KiB each); beyond, they are lost
    # and counted (docs/protocol.md, "The volatile stream").
    volatile_max: int = Field(default=1000, ge=10, le=100_000)
    # Less free space than this on the data file system raises storage_fault before writes
    # fail (0: only failing writes do).
    min_free_mib: float = Field(default=4.0, ge=0)
