"""Ingest: serialise story clustering on a row lock, not an advisory lock.

Advisory locks need no privilege: any session, the read-only role's included, could take
ingest's key and stall every ingest. Locking a row of this table FOR UPDATE needs the
UPDATE privilege, which the read-only role does not have. Not an ORM model: only ingest's
store module touches it (and recreates its row if it is missing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_locks",
        sa.Column("name", sa.Text(), primary_key=True),
        comment="rows locked FOR UPDATE to serialise ingest steps (needs UPDATE: not the read-only role)",
    )
    op.execute("INSERT INTO ingest_locks (name) VALUES ('clusters')")


def downgrade() -> None:
    op.drop_table("ingest_locks")
