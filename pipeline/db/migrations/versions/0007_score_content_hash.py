"""Scoring: remember which text a score is of, so that an edit is scored again in backfills too.

A score used to count as current when it was stamped after the article's last edit. Edits
carry the run's logical time (``--now``, an Airflow interval) and scores the wall clock, so
in a backfill an edited headline never looked newer than its old score and kept the old
verdict for good. Scores now record the ``content_hash`` of the text they judged.

Existing scores get the hash of their article's present text where the time rule says they
are current (a score of an older text keeps NULL and is scored again). That touches every
score once: on tens of millions of rows it takes minutes, and the rollup trigger is off for
it, since no verdict changes. A score the time rule already got wrong (an edit backfilled
before this revision) cannot be told apart and stays as it is.

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
    op.execute("ALTER TABLE sentiment_scores DISABLE TRIGGER trends_scores_update")
    op.execute(
        """
        UPDATE sentiment_scores AS s SET content_hash = a.content_hash
        FROM articles AS a
        WHERE a.id = s.article_id AND (a.updated_at IS NULL OR s.scored_at >= a.updated_at)
        """
    )
    op.execute("ALTER TABLE sentiment_scores ENABLE TRIGGER trends_scores_update")


def downgrade() -> None:
    op.drop_column("sentiment_scores", "content_hash")
