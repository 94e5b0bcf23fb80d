"""Ingest: remember the last stored body of each feed, so an unchanged body costs no parsing.

Revision ID: 0002
Revises: 0004
Create Date: 2026-11-29 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "feeds",
        sa.Column(
            "body_hash",
            sa.String(length=64),
            nullable=True,
            comment="sha256 of the last body stored: an unchanged body is not parsed again",
        ),
    )


def downgrade() -> None:
    op.drop_column("feeds", "body_hash")
