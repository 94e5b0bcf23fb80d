"""Scoring: remember which text a score is of, so that an edit is scored again in backfills too.

A score used to count as current when it was stamped after the article's last edit. Edits
carry the run's logical time (``--now``, an Airflow interval) and scores the wall clock, so
in a backfill an edited headline never looked newer than its old score and kept the old
verdict for good. Scores now record the ``content_hash`` of the text they judged; rows from
before this revision keep the time rule.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable with no default: adding it rewrites nothing, whatever the size of the table.
    op.add_column(
        "sentiment_scores",
        sa.Column(
            "content_hash",
            sa.String(length=64),
            nullable=True,
            comment="articles.content_hash of the text scored; NULL: scored before 0007",
        ),
    )


def downgrade() -> None:
    op.drop_column("sentiment_scores", "content_hash")
