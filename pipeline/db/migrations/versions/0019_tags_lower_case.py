"""Feed tags in lower case, and the tag alerts and silences that name them.

Tags were stored as given: an OPML folder "Markets" and `feeds add --tag markets` made two
tag scopes, each with its own alert baseline, and `finsent alerts silence --tag MARKETS`
muted neither (it matches another case only when one tag has that spelling). Tags are now
folded to lower case when stored (registry.fold_tags); this folds those stored before.

An open tag alert keeps its spelling where folding it would give a second open alert of
the same scope (the unique open-episode index); it resolves at its next evaluation.
Downgrade leaves the folded spellings: the original case is not kept anywhere.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 12:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE feeds SET tags = ARRAY(
            SELECT t FROM (
                SELECT lower(btrim(tag)) AS t, min(n) AS first FROM unnest(tags) WITH ORDINALITY AS u(tag, n)
                WHERE btrim(tag) <> '' GROUP BY 1
            ) folded ORDER BY first
        )
        WHERE EXISTS (SELECT 1 FROM unnest(tags) AS tag WHERE tag <> lower(btrim(tag)) OR btrim(tag) = '')
        """
    )
    op.execute("UPDATE alert_silences SET scope_key = lower(scope_key) WHERE scope_type = 'tag'")
    op.execute(
        """
        UPDATE alerts a SET scope_key = lower(a.scope_key)
        WHERE a.scope_type = 'tag' AND a.scope_key <> lower(a.scope_key)
          AND (a.state <> 'firing' OR NOT EXISTS (
              SELECT 1 FROM alerts b
              WHERE b.scope_type = 'tag' AND b.state = 'firing' AND b.id <> a.id
                AND lower(b.scope_key) = lower(a.scope_key)
          ))
        """
    )


def downgrade() -> None:
    pass  # the original spellings are not kept: nothing to restore
