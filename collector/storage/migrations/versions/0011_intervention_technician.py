"""ticket_interventions.technician: the technician user dispatched, who may act on it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, added only: instances of the previous release keep running during a roll-out.
    with op.batch_alter_table("ticket_interventions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("technician", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_interventions", schema=None) as batch_op:
        batch_op.drop_column("technician")
