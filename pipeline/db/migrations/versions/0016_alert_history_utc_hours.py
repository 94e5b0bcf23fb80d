"""Trends: v_alert_history's "24 h before" cuts hours in UTC, whatever the session's zone.

0014 bounded the context by ``date_trunc('hour', al.window_start)``, which truncates in the
session's time zone: in a zone with a half-hour offset (India, +05:30) the "hour" a window
starts in begins at :30 UTC, so the context took in the bucket of the window's own first
hour (the spike) and its figures changed with the session (0.39 against 0.36 negative on one
alert). The rollups' buckets are UTC hours, so the bounds are now too. Same columns; only
the view is replaced. The same text is in sql/trends_views.sql (tests/trends/test_sql.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _revision_0014():
    path = Path(__file__).with_name("0014_alert_history_before_window.py")
    spec = importlib.util.spec_from_file_location("finsent_migration_0014", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BODY_0014 = _revision_0014().BODY
BOUNDS_0014 = """      AND h.bucket >= date_trunc('hour', al.window_start) - interval '24 hours'
      AND h.bucket < date_trunc('hour', al.window_start)
"""
BOUNDS = """      AND h.bucket >= date_trunc('hour', al.window_start, 'UTC') - interval '24 hours'
      AND h.bucket < date_trunc('hour', al.window_start, 'UTC')
"""
assert BODY_0014.count(BOUNDS_0014) == 1
BODY = BODY_0014.replace(BOUNDS_0014, BOUNDS)


def upgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW v_alert_history AS\n" + BODY)


def downgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW v_alert_history AS\n" + BODY_0014)
