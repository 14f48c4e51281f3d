"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 16:32:00.713525
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import collector.storage.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "change_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_events_at"), ["at"], unique=False)

    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("notify_emails", sa.Text(), nullable=False),
        sa.Column("notify_webhook", sa.Text(), nullable=True),
        sa.Column("sav_contract", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("received_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letters_reason", ["reason"], unique=False)

    op.create_table(
        "inbound_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "stream_id", "seq", name="uq_inbound_event"),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=True),
        sa.Column("alarm_types", sa.Text(), nullable=False),
        sa.Column("starts_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("hours", sa.String(length=3), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("client_agreement", sa.String(length=16), nullable=True),
        sa.Column("quote_required", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started", sa.Boolean(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_maintenance_site_time", ["site_id", "starts_at", "ends_at"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("ticket_ref", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("recipient", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_notification_key"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "sites",
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("parent_nro", sa.String(length=128), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("site_id"),
    )
    op.create_table(
        "storm_groups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alarm_type", sa.String(length=128), nullable=False),
        sa.Column("opened_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("storm_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_storm_groups_alarm_type"), ["alarm_type"], unique=False
        )

    op.create_table(
        "streams",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.Column("applied_through", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pending_birth", sa.Text(), nullable=True),
        sa.Column("clock_skew_s", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("agent_id", "stream_id"),
    )
    op.create_table(
        "telemetry_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "stream_id", "seq", name="uq_telemetry_batch"),
    )
    op.create_table(
        "telemetry_hourly",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=False),
        sa.Column("point", sa.String(length=128), nullable=False),
        sa.Column("hour", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("minimum", sa.Double(), nullable=False),
        sa.Column("maximum", sa.Double(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "equipment_id", "point", "hour", name="uq_telemetry_hour"),
    )
    op.create_table(
        "telemetry_rollup",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column(
            "rolled_until", collector.storage.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "telemetry_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=False),
        sa.Column("point", sa.String(length=128), nullable=False),
        sa.Column("ts", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("telemetry_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telemetry_series", ["site_id", "equipment_id", "point", "ts"], unique=False
        )

    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=True),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=True),
        sa.Column("alarm_identity", sa.String(length=520), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("criticality", sa.String(length=16), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("opened_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("restored_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "return_to_nominal_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("recurrences", sa.Integer(), nullable=False),
        sa.Column(
            "previous_ticket_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "parent_ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("declaration", sa.Text(), nullable=True),
        sa.Column("restoration_notice", sa.Text(), nullable=True),
        sa.Column("hosting_ref", sa.String(length=16), nullable=True),
        sa.Column(
            "next_timer_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("sla_breached", sa.Boolean(), nullable=False),
        sa.Column(
            "penalty_excluded_from",
            collector.storage.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("penalty_excluded_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_ticket_id"],
            ["tickets.id"],
        ),
        sa.ForeignKeyConstraint(
            ["previous_ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_identity", ["alarm_identity", "state"], unique=False)
        batch_op.create_index("ix_tickets_next_timer", ["next_timer_at"], unique=False)
        batch_op.create_index("ix_tickets_site", ["site_id"], unique=False)
        batch_op.create_index("ix_tickets_state", ["state"], unique=False)

    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("stream_id", sa.String(length=32), nullable=True),
        sa.Column("boot", sa.Integer(), nullable=False),
        sa.Column("agent_version", sa.String(length=64), nullable=False),
        sa.Column("config_hash", sa.String(length=128), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column(
            "unreachable_since", collector.storage.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_seen", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_heartbeat", collector.storage.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("clock_skew_s", sa.Double(), nullable=True),
        sa.Column("outbox_events_pending", sa.Integer(), nullable=False),
        sa.Column("outbox_telemetry_pending", sa.Integer(), nullable=False),
        sa.Column("outbox_oldest_unacked_s", sa.Double(), nullable=True),
        sa.Column("outbox_thinned_total", sa.Integer(), nullable=False),
        sa.Column("outbox_critical", sa.Boolean(), nullable=False),
        sa.Column("devices_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("agent_id"),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_site_id"), ["site_id"], unique=False)

    op.create_table(
        "alarms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=False),
        sa.Column("point", sa.String(length=128), nullable=False),
        sa.Column("alarm_type", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("flapping", sa.Boolean(), nullable=False),
        sa.Column("edge_active", sa.Boolean(), nullable=False),
        sa.Column(
            "last_transition_at", collector.storage.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "suppressed_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("storm_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("in_maintenance", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["storm_id"],
            ["storm_groups.id"],
        ),
        sa.ForeignKeyConstraint(
            ["suppressed_by"],
            ["alarms.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alarms_identity",
            ["site_id", "equipment_id", "point", "alarm_type", "state"],
            unique=False,
        )
        batch_op.create_index("ix_alarms_state", ["state"], unique=False)

    op.create_table(
        "equipment",
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("equipment_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("site_id", "equipment_id"),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("hosting_ref", sa.String(length=32), nullable=False),
        sa.Column("remote_ref", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.site_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hosting_ref"),
    )
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_services_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_services_site_id"), ["site_id"], unique=False)

    op.create_table(
        "ticket_attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_attachments_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "ticket_clock_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_clock_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_clock_events_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "ticket_escalations",
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("fraction", sa.Double(), nullable=False),
        sa.Column("fired_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("ticket_id", "fraction"),
    )
    op.create_table(
        "ticket_interventions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("site_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("slot_start", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("slot_end", collector.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rollback_plan", sa.Text(), nullable=True),
        sa.Column("third_party", sa.String(length=64), nullable=True),
        sa.Column("third_party_ref", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_interventions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_interventions_site_id"), ["site_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ticket_interventions_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "ticket_operations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("before", sa.String(length=64), nullable=True),
        sa.Column("after", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("visible_to_client", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_operations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ticket_operations_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "alarm_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alarm_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", collector.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("change", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alarm_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_history_alarm_id"), ["alarm_id"], unique=False)

    op.create_table(
        "ticket_alarms",
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("alarm_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("ticket_id", "alarm_id"),
    )
    with op.batch_alter_table("ticket_alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_alarms_alarm_id"), ["alarm_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket_alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_alarms_alarm_id"))

    op.drop_table("ticket_alarms")
    with op.batch_alter_table("alarm_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarm_history_alarm_id"))

    op.drop_table("alarm_history")
    with op.batch_alter_table("ticket_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_operations_ticket_id"))

    op.drop_table("ticket_operations")
    with op.batch_alter_table("ticket_interventions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_interventions_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_interventions_site_id"))

    op.drop_table("ticket_interventions")
    op.drop_table("ticket_escalations")
    with op.batch_alter_table("ticket_clock_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_clock_events_ticket_id"))

    op.drop_table("ticket_clock_events")
    with op.batch_alter_table("ticket_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_attachments_ticket_id"))

    op.drop_table("ticket_attachments")
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_services_site_id"))
        batch_op.drop_index(batch_op.f("ix_services_client_id"))

    op.drop_table("services")
    op.drop_table("equipment")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_state")
        batch_op.drop_index("ix_alarms_identity")

    op.drop_table("alarms")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_site_id"))

    op.drop_table("agents")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_state")
        batch_op.drop_index("ix_tickets_site")
        batch_op.drop_index("ix_tickets_next_timer")
        batch_op.drop_index("ix_tickets_identity")

    op.drop_table("tickets")
    with op.batch_alter_table("telemetry_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_telemetry_series")

    op.drop_table("telemetry_samples")
    op.drop_table("telemetry_rollup")
    op.drop_table("telemetry_hourly")
    op.drop_table("telemetry_batches")
    op.drop_table("streams")
    with op.batch_alter_table("storm_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storm_groups_alarm_type"))

    op.drop_table("storm_groups")
    op.drop_table("sites")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_due")

    op.drop_table("notifications")
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_site_time")

    op.drop_table("maintenance_windows")
    op.drop_table("inbound_events")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_reason")

    op.drop_table("dead_letters")
    op.drop_table("clients")
    with op.batch_alter_table("change_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_events_at"))

    op.drop_table("change_events")
    op.drop_table("api_users")
