"""Feedback: one correction per article, company (or whole article) and person in any case.

The unique indexes held ``corrected_by`` as spelt, so "Ann" and "ann" were two people: two
conflicting corrections of one article, both training rows. ``record`` matches a person in
any case, and these indexes make that hold under concurrent posts too. Rows that already
differ only in case are merged first: the latest correction stands, as a newer correction
by the same person replaces theirs, under the spelling the person first used.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 08:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The spelling the person first used, as record() keeps it for a later correction.
FIRST_SPELLING = """
UPDATE corrections c SET corrected_by = f.spelling
FROM (
    SELECT article_id, ticker, lower(corrected_by) AS person,
           (array_agg(corrected_by ORDER BY corrected_at, id))[1] AS spelling
    FROM corrections GROUP BY 1, 2, 3 HAVING count(*) > 1
) f
WHERE c.article_id = f.article_id AND c.ticker IS NOT DISTINCT FROM f.ticker
  AND lower(c.corrected_by) = f.person
"""
MERGE = """
DELETE FROM corrections c USING (
    SELECT id, row_number() OVER (
        PARTITION BY article_id, ticker, lower(corrected_by)
        ORDER BY corrected_at DESC, id DESC
    ) AS n
    FROM corrections
) ranked
WHERE c.id = ranked.id AND ranked.n > 1
"""


def upgrade() -> None:
    # PARTITION BY groups NULL tickers together: whole-article rows merge among themselves.
    op.execute(FIRST_SPELLING)
    op.execute(MERGE)
    op.drop_index("uq_corrections_company", table_name="corrections")
    op.drop_index("uq_corrections_article", table_name="corrections")
    op.create_index(
        "uq_corrections_company",
        "corrections",
        ["article_id", "ticker", sa.text("lower(corrected_by)")],
        unique=True,
        postgresql_where=sa.text("ticker IS NOT NULL"),
    )
    op.create_index(
        "uq_corrections_article",
        "corrections",
        ["article_id", sa.text("lower(corrected_by)")],
        unique=True,
        postgresql_where=sa.text("ticker IS NULL"),
    )


def downgrade() -> None:
    # Unique in any case is unique as spelt: the former indexes always build.
    op.drop_index("uq_corrections_company", table_name="corrections")
    op.drop_index("uq_corrections_article", table_name="corrections")
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
