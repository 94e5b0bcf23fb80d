"""Feeds: the URLs a feed had before permanent redirects moved it (``feeds.moved_from``).

A feed listed in FINSENT_FEEDS (or the Airflow Variable) is registered again at every run.
Once a 301 or 308 had moved it to its new URL, the old URL it is listed under no longer
named a registered feed, so each run added it as a second feed: the same news fetched,
stored and scored twice. Registration now finds a feed under any URL it was moved from.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "feeds",
        sa.Column(
            "moved_from",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
            comment="URLs the feed had before permanent redirects moved it (registration finds it there)",
        ),
    )


def downgrade() -> None:
    op.drop_column("feeds", "moved_from")
