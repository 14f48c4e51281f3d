"""telemetry_batches.received_at indexed: the dedup keys are pruned with the raw samples

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry_batches", schema=None) as batch_op:
        batch_op.create_index("ix_telemetry_batches_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("telemetry_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_batches_received_at")
