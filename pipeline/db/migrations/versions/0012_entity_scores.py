"""Company-level sentiment: one score per (article, company, model version).

``entity_scores`` sits next to ``sentiment_scores`` (the article's own score) and is point
in time the same way: scoring with a new model adds rows and keeps the old ones. A row
says what the model thinks of the article *for that company*, from the headline and the
summary sentences that mention it, read with the mention marked
(pipeline/score/target.py). Trends and alerts for a company read it; source and market
scopes keep the article's score. No key points at article_entities, so a relink that
drops a link leaves the score unread rather than deleted (the joins go through the link).

``article_entities.mention`` keeps the first mention as written ("Ford", "BofA",
"NASDAQ:VLTA"): the text the scorer marks. NULL for links made before this revision until
`finsent feeds relink`; the scorer then falls back to the company's names.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "article_entities",
        sa.Column(
            "mention", sa.Text(), nullable=True, comment="first mention as written; NULL: linked before 0012"
        ),
    )
    op.create_table(
        "entity_scores",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column(
            "mention", sa.Text(), nullable=True, comment="the mention the model read; NULL: none found"
        ),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("p_negative", sa.REAL(), nullable=False),
        sa.Column("p_neutral", sa.REAL(), nullable=False),
        sa.Column("p_positive", sa.REAL(), nullable=False),
        sa.Column("score", sa.REAL(), nullable=False, comment="p_positive - p_negative"),
        sa.Column("scored_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column(
            "content_hash", sa.String(64), nullable=True, comment="articles.content_hash of the text scored"
        ),
        sa.CheckConstraint(
            "label IN ('negative', 'neutral', 'positive')", name=op.f("ck_entity_scores_label")
        ),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_entity_scores_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_scores")),
        sa.UniqueConstraint(
            "article_id", "ticker", "model_version", name="uq_entity_scores_article_ticker_model"
        ),
        comment="sentiment of an article for one company (docs/companies.md); point in time per model",
    )
    op.create_index("brin_entity_scores_scored_at", "entity_scores", ["scored_at"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_index("brin_entity_scores_scored_at", table_name="entity_scores", postgresql_using="brin")
    op.drop_table("entity_scores")
    op.drop_column("article_entities", "mention")
