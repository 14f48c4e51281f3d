"""indexes for storm grouping and symptom closing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 17:16:37.731595
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index("ix_alarms_suppressed_by", ["suppressed_by"], unique=False)
        batch_op.create_index(
            "ix_alarms_type_transition", ["alarm_type", "last_transition_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_type_transition")
        batch_op.drop_index("ix_alarms_suppressed_by")
