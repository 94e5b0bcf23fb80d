"""Web: login sessions recorded by the server, so that logging out ends one everywhere.

The session cookie was only verified by its MAC: a copy taken before logging out stayed
valid until it expired, and nothing could end one session without changing the token. A
row per login (the sha256 of the cookie's nonce, never the cookie) is what every worker of
the app checks; logging out marks it ended. Expired rows are deleted at later logins.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column(
            "nonce_hash",
            sa.String(64),
            nullable=False,
            comment="sha256 of the cookie's nonce; the cookie is never stored",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True, comment="logged out"),
        sa.PrimaryKeyConstraint("nonce_hash", name=op.f("pk_ui_sessions")),
    )
    op.create_index("ix_ui_sessions_expires_at", "ui_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ui_sessions_expires_at", table_name="ui_sessions")
    op.drop_table("ui_sessions")
