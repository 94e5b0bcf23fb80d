"""Feedback: analysts' corrections of a model's label, kept apart from the scores.

One row per (article, company or none, person): a newer correction by the same person
replaces theirs (the two partial unique indexes are the upsert's conflict targets; a plain
unique constraint would let any number of whole-article rows through, NULL being distinct).
No key points at sentiment_scores, so re-scoring and relinking never touch a correction;
only deleting the article itself (``finsent feeds remove --purge``) takes its corrections.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=True, comment="NULL: the whole article"),
        sa.Column(
            "model_version", sa.String(128), nullable=True, comment="the score corrected; NULL: unscored"
        ),
        sa.Column("model_label", sa.String(16), nullable=True, comment="the label that score gave"),
        sa.Column("label", sa.String(16), nullable=False, comment="negative | neutral | positive"),
        sa.Column("corrected_by", sa.Text(), nullable=False, comment="free text: an email or a name"),
        sa.Column("corrected_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("label IN ('negative', 'neutral', 'positive')", name=op.f("ck_corrections_label")),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_corrections_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
        comment="analysts' corrections; the feedback training source (docs/feedback.md)",
    )
    op.create_index(
        "uq_corrections_company",
        "corrections",
        ["article_id", "ticker", "corrected_by"],
        unique=True,
        postgresql_where=sa.text("ticker IS NOT NULL"),
    )
    op.create_index(
        "uq_corrections_article",
        "corrections",
        ["article_id", "corrected_by"],
        unique=True,
        postgresql_where=sa.text("ticker IS NULL"),
    )
    op.create_index("ix_corrections_corrected_at", "corrections", ["corrected_at"])


def downgrade() -> None:
    op.drop_table("corrections")
