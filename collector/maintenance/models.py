"""Planned works (maintenance windows)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, Index, Integer, String, Text, or_
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class MaintenanceWindow(Base):
    """Planned works at a site: alarms in scope are recorded but open no ticket meanwhile."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_site_time", "site_id", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(128))
    # Empty: every equipment / every alarm type of the site.
    equipment_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    alarm_types: Mapped[str] = mapped_column(Text, default="")  # comma-separated
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    category: Mapped[str] = mapped_column(String(16))  # scheduled | urgent | third_party
    hours: Mapped[str] = mapped_column(String(3))  # HO | HNO
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_agreement: Mapped[str | None] = mapped_column(String(16), nullable=True)
    quote_required: Mapped[bool] = mapped_column(default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    started: Mapped[bool] = mapped_column(default=False)
    ended: Mapped[bool] = mapped_column(default=False)

    @classmethod
    def takes_place(cls) -> ColumnElement[bool]:
        """Works the client refused do not happen: they mute nothing and exclude no time."""
        return or_(cls.client_agreement.is_(None), cls.client_agreement != "refused")

    def covers(self, *, equipment_id: str, alarm_type: str) -> bool:
        """True when an alarm of this equipment and type is in scope."""
        types = [t for t in self.alarm_types.split(",") if t]
        return (self.equipment_id in (None, "", equipment_id)) and (
            not types or alarm_type in types
        )
