"""Ingest: remember how often each feed asks to be polled (RSS <ttl>, sy:updatePeriod).

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no default: adding it rewrites nothing, whatever the size of the table.
    op.add_column(
        "feeds",
        sa.Column(
            "poll_interval_s",
            sa.Integer(),
            nullable=True,
            comment="seconds between polls the feed asks for (<ttl>, sy:updatePeriod); NULL = no hint",
        ),
    )


def downgrade() -> None:
    op.drop_column("feeds", "poll_interval_s")
