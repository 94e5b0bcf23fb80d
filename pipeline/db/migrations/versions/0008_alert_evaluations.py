"""Alerts: remember every evaluation time, so an out-of-order backfill sends no email.

An evaluation at a time earlier than one already evaluated used to open (and notify) an
episode that the later evaluation had found calm: a FIRING email for the past, then a
RESOLVED one. Evaluations now record their time; one earlier than the latest records its
alerts without notifying, as ``alerts check --no-notify`` does.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_evaluations",
        sa.Column("evaluated_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column(
            "ran_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="wall clock",
        ),
    )
    # What is known of past evaluations: the latest time an alert or an email records.
    op.execute(
        """
        INSERT INTO alert_evaluations (evaluated_at)
        SELECT t FROM (
            SELECT greatest((SELECT max(last_evaluated_at) FROM alerts),
                            (SELECT max(evaluated_at) FROM alert_deliveries)) AS t
        ) AS latest
        WHERE t IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_table("alert_evaluations")
