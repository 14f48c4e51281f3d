"""agents.listeners_json: each trap and syslog listener of the agent, from its heartbeat

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, added only: instances of the previous release keep running during a roll-out.
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listeners_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("listeners_json")
