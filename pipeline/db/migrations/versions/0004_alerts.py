"""Alerts: grouped deliveries (one email may carry several alerts) and content snapshots.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-29 04:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "alert_deliveries",
        sa.Column(
            "evaluated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="evaluation time that queued it (part of the dedup key)",
        ),
    )
    op.add_column(
        "alert_deliveries",
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="what the email shows, frozen when queued so a retry sends the same message",
        ),
    )
    op.create_table(
        "alert_delivery_items",
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="firing | repeat | resolved"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["alert_deliveries.id"],
            name=op.f("fk_alert_delivery_items_delivery_id_alert_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_delivery_items_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", "alert_id", name=op.f("pk_alert_delivery_items")),
    )
    op.create_index("ix_alert_delivery_items_alert_id", "alert_delivery_items", ["alert_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alert_delivery_items_alert_id", table_name="alert_delivery_items")
    op.drop_table("alert_delivery_items")
    op.drop_column("alert_deliveries", "payload")
    op.drop_column("alert_deliveries", "evaluated_at")
