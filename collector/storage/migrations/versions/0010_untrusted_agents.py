"""untrusted agents: quarantined streams, unenrolled agents, capped dead letters and their totals

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import collector.storage.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = collector.storage.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dead_letter_totals",
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reason"),
    )
    # The counters start from what is stored (dead letters were never pruned until now).
    op.execute(
        "INSERT INTO dead_letter_totals (reason, total)"
        " SELECT reason, count(*) FROM dead_letters GROUP BY reason"
    )
    op.create_table(
        "stream_interventions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stream_interventions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stream_interventions_agent_id"), ["agent_id"], unique=False
        )
    op.create_table(
        "unenrolled_agents",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_site_id", sa.String(length=128), nullable=False),
        sa.Column("first_seen", _UTC, nullable=False),
        sa.Column("last_seen", _UTC, nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("sha256", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_index("ix_dead_letters_agent_id", ["agent_id"], unique=False)
        batch_op.create_index("ix_dead_letters_received_at", ["received_at"], unique=False)
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        # The defaults only filled the rows already there.
        batch_op.alter_column("size", server_default=None)
        batch_op.alter_column("sha256", server_default=None)
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quarantined_at", _UTC, nullable=True))
        batch_op.add_column(sa.Column("quarantine_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("quarantine_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.drop_column("quarantine_reason")
        batch_op.drop_column("quarantine_seq")
        batch_op.drop_column("quarantined_at")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_received_at")
        batch_op.drop_index("ix_dead_letters_agent_id")
        batch_op.drop_column("sha256")
        batch_op.drop_column("size")
        batch_op.drop_column("agent_id")
    op.drop_table("unenrolled_agents")
    with op.batch_alter_table("stream_interventions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stream_interventions_agent_id"))
    op.drop_table("stream_interventions")
    op.drop_table("dead_letter_totals")
