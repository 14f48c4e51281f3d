"""alarms.acknowledged_by/_at, ack_note; alarm_history.actor, note: alarm acknowledgement

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import collector.storage.base

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TYPE = collector.storage.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Columns on the alarm, not a table: an occurrence has at most one acknowledgement at a
    # time and every alarm list shows and filters it; the history keeps what came and went.
    # Nullable, added only: instances of the previous release keep running during a roll-out,
    # and every alarm already stored reads as not acknowledged.
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", _TYPE, nullable=True))
        batch_op.add_column(sa.Column("ack_note", sa.Text(), nullable=True))
    with op.batch_alter_table("alarm_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarm_history", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("actor")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_column("ack_note")
        batch_op.drop_column("acknowledged_at")
        batch_op.drop_column("acknowledged_by")
