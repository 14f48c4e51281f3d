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
