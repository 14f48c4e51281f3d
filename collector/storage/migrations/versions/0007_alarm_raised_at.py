"""alarms.raised_at: the event time of the raise, on which storm windows are counted

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import collector.storage.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TYPE = collector.storage.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raised_at", _TYPE, nullable=True))
    # Alarms raised before this column: their edge time of first sight is the best there is.
    op.execute("UPDATE alarms SET raised_at = first_seen WHERE raised_at IS NULL")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.alter_column("raised_at", existing_type=_TYPE, nullable=False)
        batch_op.create_index("ix_alarms_type_raised", ["alarm_type", "raised_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_type_raised")
        batch_op.drop_column("raised_at")
