"""Ingest: repair stories whose first copy was deleted by ``feeds remove --purge``.

Before this release a purge deleted a feed's articles even when other feeds' copies named
one of them as their story's first copy (``cluster_id``); those copies stayed
``is_novel = false`` and the story counted as novel nowhere. The earliest surviving copy of
each such story becomes its first copy again, as ``feeds remove --purge`` now does itself.
The trends triggers mark the touched hours for the next rollup refresh.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 20:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One anti-join over the copies (first copies point at themselves and are skipped).
    op.execute(
        """
        WITH orphans AS (
            SELECT a.id, min(a.id) OVER (PARTITION BY a.cluster_id) AS root
            FROM articles AS a
            WHERE a.cluster_id IS NOT NULL AND a.cluster_id <> a.id
              AND NOT EXISTS (SELECT 1 FROM articles AS r WHERE r.id = a.cluster_id)
        )
        UPDATE articles AS a
        SET cluster_id = o.root, is_novel = (a.id = o.root)
        FROM orphans AS o
        WHERE a.id = o.id
        """
    )


def downgrade() -> None:
    # A data repair: there is nothing to undo (the deleted first copies are gone).
    pass
