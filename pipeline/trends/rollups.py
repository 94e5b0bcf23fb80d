"""Keep ``sentiment_hourly`` and ``sentiment_daily`` current without rescanning history.

Triggers (sql/trends_rollups.sql) queue the UTC hour of every article whose score, ticker
links, time, feed or novelty changed into ``trends_dirty_hours``, in the same transaction as
the change. :func:`refresh_rollups` takes the queue, recomputes exactly those hours for every
scope (market, each feed, each ticker) and then the UTC days containing them, all in one
transaction. Readers see either the old or the new rollups, never a half-refreshed hour.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from pipeline.companies.relevance import counts_sql
from pipeline.db.engine import Database
from pipeline.errors import FinSentError

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)

# pg_advisory_xact_lock key: two refreshes at once (Airflow retries, a manual run) would both
# take half the queue and race on the same buckets; one waits for the other instead.
REFRESH_LOCK_KEY = 0x46534E54_0005  # "FSNT" + issue 5

# One scan of the whole article range (and one sort) beats a probe per hour when many hours
# are queued and they cover a good part of that range (a backfill, a model re-scoring
# history). A few hundred scattered hours (late articles, a partial re-score) stay per hour.
BULK_HOURS = 500
BULK_MIN_DENSITY = 0.25

# Scores are stored as real: sum(real) also adds in real, which in a busy hour drifts in the
# sixth digit and with the order rows arrive in; double precision keeps the sums exact enough
# that the same data gives the same figures on every refresh path.
AGGREGATES = """
    count(*),
    count(*) FILTER (WHERE {c}is_novel),
    count(*) FILTER (WHERE {c}label = 'negative'),
    count(*) FILTER (WHERE {c}label = 'neutral'),
    count(*) FILTER (WHERE {c}label = 'positive'),
    count(*) FILTER (WHERE {c}is_novel AND {c}label = 'negative'),
    sum({c}score::double precision),
    sum({c}confidence::double precision),
    sum({c}score::double precision * {c}confidence)"""

ROLLUP_COLUMNS = (
    "bucket, scope_type, scope_key, n_articles, n_novel, n_negative, n_neutral, n_positive, "
    "n_novel_negative, sum_score, sum_confidence, sum_weighted_score"
)

# The current score of each article in a few time ranges (runs of queued hours), one index
# lookup per article: the same rule as v_article_sentiment. The ranges are literal bounds, not
# a join, so the planner sees how few articles they hold and uses the BRIN index on
# published_at, then primary keys, never a scan of the whole table.
CURRENT_IN_RANGES = """
    SELECT a.id, a.feed_id, a.is_novel, date_trunc('hour', a.published_at, 'UTC') AS bucket,
           s.model_version, s.label, s.score,
           greatest(s.p_negative, s.p_neutral, s.p_positive) AS confidence
    FROM articles a
    CROSS JOIN LATERAL (
        SELECT s.model_version, s.label, s.score, s.p_negative, s.p_neutral, s.p_positive
        FROM sentiment_scores s
        WHERE s.article_id = a.id
        ORDER BY s.scored_at DESC, s.id DESC
        LIMIT 1
    ) s
    WHERE {ranges}
"""
# Runs of hours per statement: long enough to batch, short enough for a quick plan.
RANGES_PER_STATEMENT = 64

# The same rows for many hours (a backfill, a model re-scoring history): one range scan and
# one sort instead of a probe per hour and a lookup per article.
CURRENT_BULK = """
    SELECT DISTINCT ON (s.article_id)
        s.article_id AS id, a.feed_id, a.is_novel,
        date_trunc('hour', a.published_at, 'UTC') AS bucket,
        s.model_version, s.label, s.score, greatest(s.p_negative, s.p_neutral, s.p_positive) AS confidence
    FROM articles a
    JOIN sentiment_scores s ON s.article_id = a.id
    WHERE a.published_at >= :lo AND a.published_at < :hi
      AND date_trunc('hour', a.published_at, 'UTC') IN (SELECT bucket FROM trends_refresh_hours)
    ORDER BY s.article_id, s.scored_at DESC, s.id DESC
"""

SUMS = (
    "n_articles, n_novel, n_negative, n_neutral, n_positive, n_novel_negative, "
    "sum_score, sum_confidence, sum_weighted_score"
)
NEGATED_SUMS = ", ".join(f"-{c.strip()}" for c in SUMS.split(","))

# The recomputed hours, inserted in time order (an hour's rows then share a few pages).
# {track} either ends the statement or, for a delta update of the daily rollup, records the
# new rows in trends_refresh_delta.
# A passing mention (relevance below the line) does not count for its company.
COUNTS = counts_sql("e")

# Ticker scopes read the company's own sentiment: the entity score of the same model version
# as the article's current score (one probe of the unique (article_id, ticker, model_version)
# index per counted link), else the article's score (an article-level model, an article scored
# before company scoring). Every counted link weighs 1: the rollups keep integer counts, and
# relevance decides whether an article is about the company, not how much. Feed and market
# scopes keep the article's score.
COMPANY_ROWS = f"""
    SELECT c.bucket, c.is_novel, e.ticker,
           coalesce(es.label, c.label) AS label,
           coalesce(es.score, c.score) AS score,
           CASE WHEN es.id IS NULL THEN c.confidence
                ELSE greatest(es.p_negative, es.p_neutral, es.p_positive) END AS confidence
    FROM cur c
    JOIN article_entities e ON e.article_id = c.id AND {COUNTS}
    LEFT JOIN entity_scores es
      ON es.article_id = c.id AND es.ticker = e.ticker AND es.model_version = c.model_version
"""

INSERT_HOURLY = f"""
WITH cur AS ({{current}}),
fresh AS (
    SELECT bucket, 'market' AS scope_type, 'all' AS scope_key, {AGGREGATES.format(c="")}
    FROM cur GROUP BY bucket
    UNION ALL
    SELECT bucket, 'feed', feed_id::text, {AGGREGATES.format(c="")}
    FROM cur GROUP BY bucket, feed_id
    UNION ALL
    SELECT bucket, 'ticker', ticker, {AGGREGATES.format(c="")}
    FROM ({COMPANY_ROWS}) company GROUP BY bucket, ticker
){{track}}
"""
PLAIN_INSERT = f"""
INSERT INTO sentiment_hourly ({ROLLUP_COLUMNS})
SELECT * FROM fresh ORDER BY bucket
"""
TRACKED_INSERT = f""",
ins AS (
    INSERT INTO sentiment_hourly ({ROLLUP_COLUMNS})
    SELECT * FROM fresh ORDER BY bucket
    RETURNING *
)
INSERT INTO trends_refresh_delta
SELECT scope_type, scope_key, date_trunc('day', bucket, 'UTC'), {SUMS} FROM ins
"""

PLAIN_DELETE = """
DELETE FROM sentiment_hourly h USING trends_refresh_hours r
WHERE h.scope_type IN ('market', 'feed', 'ticker') AND h.bucket = r.bucket
"""
# The old rows leave as negative deltas: a scope that vanished from an hour is subtracted too.
TRACKED_DELETE = f"""
WITH gone AS ({PLAIN_DELETE} RETURNING h.*)
INSERT INTO trends_refresh_delta
SELECT scope_type, scope_key, date_trunc('day', bucket, 'UTC'), {NEGATED_SUMS} FROM gone
"""

# Daily by delta: each touched (scope, day) gets new minus old of its recomputed hours, so the
# work is proportional to the hours that changed, not to their days. Counts stay exact; float
# sums may differ from a fresh sum in the last bits. Days left empty are removed.
APPLY_DELTA = f"""
INSERT INTO sentiment_daily ({ROLLUP_COLUMNS})
SELECT day, scope_type, scope_key, {", ".join(f"sum({c.strip()})" for c in SUMS.split(","))}
FROM trends_refresh_delta
GROUP BY day, scope_type, scope_key
ORDER BY day
ON CONFLICT (scope_type, scope_key, bucket) DO UPDATE SET
{", ".join(f"{c.strip()} = sentiment_daily.{c.strip()} + EXCLUDED.{c.strip()}" for c in SUMS.split(","))},
    refreshed_at = now()
"""
DROP_EMPTY_DAYS = """
DELETE FROM sentiment_daily d USING (SELECT DISTINCT scope_type, scope_key, day FROM trends_refresh_delta) k
WHERE d.scope_type = k.scope_type AND d.scope_key = k.scope_key AND d.bucket = k.day AND d.n_articles <= 0
"""

# Daily exactly (a repair, a rebuild): whole days again from their hours, by equality on every
# hour of each day (index probes on (scope_type, bucket)).
DELETE_DAYS = """
DELETE FROM sentiment_daily d
USING (SELECT DISTINCT date_trunc('day', bucket, 'UTC') AS day FROM trends_refresh_hours) days
WHERE d.scope_type IN ('market', 'feed', 'ticker') AND d.bucket = days.day
"""
REBUILD_DAYS = f"""
INSERT INTO sentiment_daily ({ROLLUP_COLUMNS})
SELECT date_trunc('day', h.bucket, 'UTC'), h.scope_type, h.scope_key,
       {", ".join(f"sum(h.{c.strip()})" for c in SUMS.split(","))}
FROM (SELECT DISTINCT date_trunc('day', bucket, 'UTC') AS day FROM trends_refresh_hours) days
CROSS JOIN LATERAL generate_series(days.day, days.day + interval '23 hours', interval '1 hour') AS g (hour)
JOIN sentiment_hourly h ON h.scope_type IN ('market', 'feed', 'ticker') AND h.bucket = g.hour
GROUP BY 1, 2, 3
ORDER BY 1
"""


def refresh_rollups(db: Database, *, since: datetime | None = None) -> int:
    """Recompute the hourly and daily rollups of every queued hour; returns how many hours.

    ``since`` (timezone-aware) also recomputes every hour from then on, whether queued or not:
    a repair after manual edits, or a backfill. Safe to run concurrently (they serialise) and
    to re-run (a second run finds an empty queue).
    """
    if since is not None and since.tzinfo is None:
        raise FinSentError(
            f"refresh_rollups: since={since.isoformat()} has no timezone: pass an aware datetime",
            stage="trends",
        )
    # READ COMMITTED whatever the server's default: each statement after the lock must see
    # what the refresh we waited for committed. Under REPEATABLE READ the snapshot would date
    # from before the wait, and every step would fail to serialise against that refresh.
    with db.engine.connect().execution_options(isolation_level="READ COMMITTED") as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK_KEY})
        hours = _take_hours(conn, since)
        if hours:
            _recompute(conn, hours, exact_days=since is not None)
    if hours:
        log.info("trend rollups: %d hour(s) recomputed", hours)
    return hours


def pending_hours(db: Database) -> int:
    """How many distinct hours wait for a refresh (0: the rollups are current)."""
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT count(DISTINCT bucket) FROM trends_dirty_hours")).scalar_one()


def _take_hours(conn: Connection, since: datetime | None) -> int:
    conn.execute(
        text(
            "CREATE TEMP TABLE trends_refresh_hours (bucket timestamptz PRIMARY KEY) ON COMMIT DROP;"
            "CREATE TEMP TABLE trends_refresh_delta ON COMMIT DROP AS "
            "SELECT scope_type, scope_key, bucket AS day, n_articles, n_novel, n_negative, n_neutral, "
            "n_positive, n_novel_negative, sum_score, sum_confidence, sum_weighted_score "
            "FROM sentiment_daily WITH NO DATA"
        )
    )
    # Only rows committed before this statement are taken; later ones stay for the next run.
    conn.execute(
        text(
            "WITH taken AS (DELETE FROM trends_dirty_hours RETURNING bucket) "
            "INSERT INTO trends_refresh_hours SELECT DISTINCT bucket FROM taken"
        )
    )
    if since is not None:
        params = {"since": since}
        conn.execute(
            text(
                "INSERT INTO trends_refresh_hours "
                "SELECT DISTINCT date_trunc('hour', published_at, 'UTC') FROM articles "
                "WHERE published_at >= date_trunc('hour', CAST(:since AS timestamptz), 'UTC') "
                "ON CONFLICT DO NOTHING"
            ),
            params,
        )
        # Hours that have rollups but no articles any more must be emptied too.
        conn.execute(
            text(
                "INSERT INTO trends_refresh_hours "
                "SELECT DISTINCT bucket FROM sentiment_hourly "
                "WHERE scope_type = 'market' "
                "AND bucket >= date_trunc('hour', CAST(:since AS timestamptz), 'UTC') "
                "ON CONFLICT DO NOTHING"
            ),
            params,
        )
    return conn.execute(text("SELECT count(*) FROM trends_refresh_hours")).scalar_one()


def _recompute(conn: Connection, hours: int, *, exact_days: bool) -> None:
    # The refresh is many small index probes: JIT compilation would cost more than it saves.
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text("ANALYZE trends_refresh_hours"))
    buckets = conn.execute(text("SELECT bucket FROM trends_refresh_hours ORDER BY bucket")).scalars().all()
    lo, hi = buckets[0], buckets[-1] + HOUR
    bulk = hours > BULK_HOURS and hours >= BULK_MIN_DENSITY * (hi - lo) / HOUR
    delta = not (exact_days or bulk)

    conn.execute(text(TRACKED_DELETE if delta else PLAIN_DELETE))
    track = TRACKED_INSERT if delta else PLAIN_INSERT
    if bulk:
        # One big sort and hash aggregate: memory keeps them off disk (this transaction only).
        conn.execute(text("SET LOCAL work_mem = '128MB'"))
        conn.execute(text(INSERT_HOURLY.format(current=CURRENT_BULK, track=track)), {"lo": lo, "hi": hi})
    else:
        runs = _runs(buckets)
        for start in range(0, len(runs), RANGES_PER_STATEMENT):
            batch = runs[start : start + RANGES_PER_STATEMENT]
            ranges = " OR ".join(
                f"(a.published_at >= :lo{i} AND a.published_at < :hi{i})" for i in range(len(batch))
            )
            params = {}
            for i, (run_lo, run_hi) in enumerate(batch):
                params[f"lo{i}"], params[f"hi{i}"] = run_lo, run_hi
            current = CURRENT_IN_RANGES.format(ranges=ranges)
            conn.execute(text(INSERT_HOURLY.format(current=current, track=track)), params)

    if delta:
        conn.execute(text("ANALYZE trends_refresh_delta"))
        conn.execute(text(APPLY_DELTA))
        conn.execute(text(DROP_EMPTY_DAYS))
    else:
        conn.execute(text(DELETE_DAYS))
        conn.execute(text(REBUILD_DAYS))


def _runs(buckets: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours merged into [start, end) ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for bucket in buckets:
        if runs and runs[-1][1] == bucket:
            runs[-1] = (runs[-1][0], bucket + HOUR)
        else:
            runs.append((bucket, bucket + HOUR))
    return runs
