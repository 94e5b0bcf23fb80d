"""Trends: v_alert_history's context "24 h before" ends where the alert's window begins.

The view summed the scope's hourly rollup over buckets starting before ``window_start``. A
window that starts mid-hour (07:06, as evaluations every 15 minutes give) let in the bucket
of 07:00, which holds the window's own first minutes, so the spike counted as "before"
(measured on the demo: 31 articles, 77 % negative "before" a VLTA alert whose 24 hours
before held 3 articles, none negative). Now: the 24 whole hours before the hour the window
starts in. Same columns; only the view is replaced. The same text is in
sql/trends_views.sql for people to read (tests/trends/test_sql.py checks that they match).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 08:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The view as migration 0003 created it (restored by the downgrade).
BODY_0003 = """SELECT
    al.id AS alert_id,
    al.scope_type,
    al.scope_key,
    al.state,
    al.started_at,
    al.resolved_at,
    coalesce(al.resolved_at, al.last_evaluated_at) - al.started_at AS duration,
    al.window_start,
    al.window_end,
    al.volume,
    al.negative_share,
    al.baseline_share,
    al.deviation,
    al.last_notified_at,
    al.details,
    coalesce(d.n_deliveries, 0) AS n_deliveries,
    coalesce(d.n_sent, 0) AS n_sent,
    d.last_sent_at,
    coalesce(pre.n_articles, 0) AS n_articles_24h_before,
    pre.negative_share AS negative_share_24h_before
FROM alerts al
LEFT JOIN LATERAL (
    SELECT
        count(*) AS n_deliveries,
        count(*) FILTER (WHERE ad.status = 'sent') AS n_sent,
        max(ad.sent_at) AS last_sent_at
    FROM alert_deliveries ad
    -- One email can carry several alerts (grouping): count it for each of them.
    WHERE ad.alert_id = al.id
       OR EXISTS (
           SELECT 1 FROM alert_delivery_items i WHERE i.delivery_id = ad.id AND i.alert_id = al.id
       )
) d ON true
LEFT JOIN LATERAL (
    SELECT
        sum(h.n_articles) AS n_articles,
        sum(h.n_negative)::double precision / nullif(sum(h.n_articles), 0) AS negative_share
    FROM sentiment_hourly h
    WHERE (
            (al.scope_type = 'ticker' AND h.scope_type = 'ticker' AND h.scope_key = al.scope_key)
         OR (al.scope_type = 'market' AND h.scope_type = 'market' AND h.scope_key = 'all')
         -- Source alerts name the feed (its name, else its URL); rollups key feeds by id.
         OR (al.scope_type = 'source' AND h.scope_type = 'feed' AND h.scope_key IN (
                SELECT f.id::text FROM feeds f WHERE coalesce(nullif(f.name, ''), f.url) = al.scope_key))
      )
      AND h.bucket >= al.window_start - interval '24 hours'
      AND h.bucket < al.window_start
) pre ON true;
"""

# Only the bounds of the context change: the 24 whole hours before the hour the window starts in.
BOUNDS_0003 = """      AND h.bucket >= al.window_start - interval '24 hours'
      AND h.bucket < al.window_start
"""
BOUNDS = """      -- The 24 whole hours before the hour the window starts in: a window that starts
      -- mid-hour must not count its own first hour (where the spike is) as before.
      AND h.bucket >= date_trunc('hour', al.window_start) - interval '24 hours'
      AND h.bucket < date_trunc('hour', al.window_start)
"""
BODY = BODY_0003.replace(BOUNDS_0003, BOUNDS)


def upgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW v_alert_history AS\n" + BODY)


def downgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW v_alert_history AS\n" + BODY_0003)
