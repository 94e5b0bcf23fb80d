"""Feed tags in lower case, and the tag alerts and silences that name them.

Tags were stored as given: an OPML folder "Markets" and `feeds add --tag markets` made two
tag scopes, each with its own alert baseline, and `finsent alerts silence --tag MARKETS`
muted neither (it matches another case only when one tag has that spelling). Tags are now
folded to lower case when stored (registry.fold_tags); this folds those stored before.

The folding is the registry's (``str.strip().lower()``, Python's: PostgreSQL's lower()
depends on the database's collation and btrim on spaces only), copied here so that this
revision stays what it was. An open tag alert keeps its spelling where folding it would give
a second open alert of the same scope (the unique open-episode index); it resolves at its
next evaluation.
Downgrade leaves the folded spellings: the original case is not kept anywhere.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 12:20:00
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _fold(tags: list[str]) -> list[str]:
    # pipeline.ingest.registry.fold_tags as of this revision.
    return list(dict.fromkeys(t.strip().lower() for t in tags if t and t.strip()))


def _fold_key(key: str) -> str:
    return (_fold([key]) or [key])[0]


def upgrade() -> None:
    bind = op.get_bind()
    feeds = sa.table("feeds", sa.column("id", sa.Integer), sa.column("tags", postgresql.ARRAY(sa.Text())))
    for feed_id, tags in bind.execute(sa.select(feeds.c.id, feeds.c.tags)).all():
        folded = _fold(list(tags or []))
        if tags is not None and folded != list(tags):
            bind.execute(feeds.update().where(feeds.c.id == feed_id).values(tags=folded))

    silences = sa.table(
        "alert_silences", sa.column("id", sa.Integer), sa.column("scope_type"), sa.column("scope_key")
    )
    rows = bind.execute(sa.select(silences.c.id, silences.c.scope_key).where(silences.c.scope_type == "tag"))
    for silence_id, key in rows.all():
        if _fold_key(key) != key:
            bind.execute(
                silences.update().where(silences.c.id == silence_id).values(scope_key=_fold_key(key))
            )

    alerts = sa.table(
        "alerts",
        sa.column("id", sa.BigInteger),
        sa.column("scope_type"),
        sa.column("scope_key"),
        sa.column("state"),
    )
    tagged = bind.execute(
        sa.select(alerts.c.id, alerts.c.scope_key, alerts.c.state).where(alerts.c.scope_type == "tag")
    ).all()
    open_per_key = Counter(_fold_key(key) for _, key, state in tagged if state == "firing")
    for alert_id, key, state in tagged:
        folded = _fold_key(key)
        if folded != key and (state != "firing" or open_per_key[folded] == 1):
            bind.execute(alerts.update().where(alerts.c.id == alert_id).values(scope_key=folded))


def downgrade() -> None:
    pass  # the original spellings are not kept: nothing to restore
