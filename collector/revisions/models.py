"""One revision of a configuration object: here, a data file as the collector found it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.storage import Base


class Revision(Base):
    """A new content of one object: its hash, the whole content and the diff from the last."""

    __tablename__ = "revisions"
    __table_args__ = (Index("ix_revisions_object", "object_kind", "object_key", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # "data_file" (contracts, rules), "inventory_file"; the key: its path in its folder.
    object_kind: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    previous_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content: Mapped[str] = mapped_column(Text)
    # Unified diff from the previous revision ("" for the first one).
    diff: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(index=True)
