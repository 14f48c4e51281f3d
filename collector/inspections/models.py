"""An inspection of a site, and what each checklist item saw."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class Inspection(Base):
    """A technician's inspection: active from ``started_at`` to ``ends_at`` unless completed."""

    __tablename__ = "inspections"
    __table_args__ = (Index("ix_inspections_site_time", "site_id", "started_at", "ends_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128))
    technician: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|completed|ended
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Per checklist item: {"triggered_at": ..., "restored_at": ..., "alarm_types": [...]}.
    results: Mapped[str] = mapped_column(Text, default="{}")
