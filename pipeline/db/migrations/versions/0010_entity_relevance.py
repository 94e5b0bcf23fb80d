"""Companies: each (article, company) link carries its relevance, 0-100.

Links stored before this revision keep NULL until `finsent feeds relink` recomputes them;
the check keeps every stored value in range.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "article_entities",
        sa.Column("relevance", sa.SmallInteger(), nullable=True, comment="0-100, see docs/companies.md"),
    )
    op.alter_column(
        "article_entities",
        "matched_by",
        existing_type=sa.String(16),
        comment="exchange | ric | cashtag | name | alias | ticker",
        existing_comment="cashtag | exchange | name | alias",
    )
    op.create_check_constraint(
        op.f("ck_article_entities_relevance_range"), "article_entities", "relevance BETWEEN 0 AND 100"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_article_entities_relevance_range"), "article_entities", type_="check")
    op.alter_column(
        "article_entities",
        "matched_by",
        existing_type=sa.String(16),
        comment="cashtag | exchange | name | alias",
        existing_comment="exchange | ric | cashtag | name | alias | ticker",
    )
    op.drop_column("article_entities", "relevance")
