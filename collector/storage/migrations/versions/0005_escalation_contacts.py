"""escalation_contacts: each client's contacts and escalation matrix

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("hours", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("escalation_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_escalation_contacts_client_id"), ["client_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("escalation_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_contacts_client_id"))
    op.drop_table("escalation_contacts")
