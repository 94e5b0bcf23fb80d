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

# Per person in any case (NULL tickers grouped together: whole-article rows merge among
# themselves): the row that stands (the latest) and the spelling the person first used, as
# record() keeps it for a later correction. Deleted first, renamed after, so that the
# indexes as spelt never see two rows of one spelling.
MERGE = [
    """
    CREATE TEMPORARY TABLE corrections_merge ON COMMIT DROP AS
    SELECT article_id, ticker, lower(corrected_by) AS person,
           (array_agg(id ORDER BY corrected_at DESC, id DESC))[1] AS keep,
           (array_agg(corrected_by ORDER BY corrected_at, id))[1] AS spelling
    FROM corrections GROUP BY 1, 2, 3 HAVING count(*) > 1
    """,
    """
    DELETE FROM corrections c USING corrections_merge m
    WHERE c.article_id = m.article_id AND c.ticker IS NOT DISTINCT FROM m.ticker
      AND lower(c.corrected_by) = m.person AND c.id <> m.keep
    """,
    "UPDATE corrections c SET corrected_by = m.spelling FROM corrections_merge m WHERE c.id = m.keep",
]


def _unique_per_person(person: str | sa.TextClause) -> None:
    """Replace the two unique indexes (a company's corrections; whole-article ones: NULL
    tickers are distinct in a unique index) with ones keyed by ``person``."""
    op.drop_index("uq_corrections_company", table_name="corrections")
    op.drop_index("uq_corrections_article", table_name="corrections")
    op.create_index(
        "uq_corrections_company",
        "corrections",
        ["article_id", "ticker", person],
        unique=True,
        postgresql_where=sa.text("ticker IS NOT NULL"),
    )
    op.create_index(
        "uq_corrections_article",
        "corrections",
        ["article_id", person],
        unique=True,
        postgresql_where=sa.text("ticker IS NULL"),
    )


def upgrade() -> None:
    for statement in MERGE:
        op.execute(statement)
    _unique_per_person(sa.text("lower(corrected_by)"))


def downgrade() -> None:
    # Unique in any case is unique as spelt: the former indexes always build.
    _unique_per_person("corrected_by")
