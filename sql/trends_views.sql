-- FinSent trends: the views analysts query (psql, Grafana, notebooks, BI tools).
--
-- Created by Alembic migration 0003 (embedded there verbatim; tests/test_trends_sql.py checks
-- that this file and the migration agree). A later change to a view is a new migration.
--
-- Conventions
--   * Buckets are UTC: `bucket` is the start of the UTC hour (or day) of published_at.
--   * Counts are scored articles; shares are fractions 0..1 of those articles.
--   * mean_score is the mean of p_positive - p_negative (-1..1); weighted_score weights each
--     article by its confidence (its top class probability), so hesitant verdicts count less.
--   * novel_* columns count only first copies of a story (articles.is_novel), so one
--     syndicated wire story carried by ten feeds counts once.
--   * Whose sentiment: ticker views count each article about the company with the company's
--     own score (entity_scores of the current model version, else the article's score;
--     passing mentions, relevance < 30, not at all), since revision 0013 (sql/trends_company.sql).
--     Feed and market views, and v_article_sentiment, use the article's own score.
--   * The hourly/daily views read the rollup tables (sql/trends_rollups.sql): they are as
--     fresh as the last refresh_rollups() (the pipeline runs it after every scoring run;
--     SELECT count(*) FROM trends_dirty_hours > 0 means a refresh is pending).

-- The current score of every scored article: its latest model version (greatest scored_at).
-- Older versions stay in sentiment_scores for point-in-time history.
CREATE VIEW v_article_sentiment AS
SELECT
    a.id            AS article_id,
    a.feed_id,
    a.published_at,
    a.first_seen_at,
    a.title,
    a.url,
    a.is_novel,
    a.cluster_id,
    s.id            AS score_id,
    s.model_version,
    s.label,
    s.p_negative,
    s.p_neutral,
    s.p_positive,
    s.score,
    greatest(s.p_negative, s.p_neutral, s.p_positive) AS confidence,
    s.scored_at
FROM articles a
CROSS JOIN LATERAL (
    SELECT *
    FROM sentiment_scores s
    WHERE s.article_id = a.id
    ORDER BY s.scored_at DESC, s.id DESC
    LIMIT 1
) s;

-- Every scope at once; the per-scope views below are the ones to use.
CREATE VIEW v_sentiment_hourly AS
SELECT
    h.bucket,
    h.scope_type,
    h.scope_key,
    h.n_articles,
    h.n_novel,
    h.n_negative,
    h.n_neutral,
    h.n_positive,
    h.n_negative::double precision / h.n_articles AS negative_share,
    h.n_neutral::double precision / h.n_articles  AS neutral_share,
    h.n_positive::double precision / h.n_articles AS positive_share,
    h.n_novel_negative::double precision / nullif(h.n_novel, 0) AS novel_negative_share,
    h.sum_score / h.n_articles AS mean_score,
    h.sum_weighted_score / nullif(h.sum_confidence, 0) AS weighted_score
FROM sentiment_hourly h;

CREATE VIEW v_sentiment_daily AS
SELECT
    d.bucket,
    d.scope_type,
    d.scope_key,
    d.n_articles,
    d.n_novel,
    d.n_negative,
    d.n_neutral,
    d.n_positive,
    d.n_negative::double precision / d.n_articles AS negative_share,
    d.n_neutral::double precision / d.n_articles  AS neutral_share,
    d.n_positive::double precision / d.n_articles AS positive_share,
    d.n_novel_negative::double precision / nullif(d.n_novel, 0) AS novel_negative_share,
    d.sum_score / d.n_articles AS mean_score,
    d.sum_weighted_score / nullif(d.sum_confidence, 0) AS weighted_score
FROM sentiment_daily d;

-- Per ticker (article_entities: one article can mention several tickers and counts for each,
-- with its sentiment for that company: see Conventions).
CREATE VIEW v_ticker_sentiment_hourly AS
SELECT
    bucket, scope_key AS ticker, n_articles, n_novel, n_negative, n_neutral, n_positive,
    negative_share, neutral_share, positive_share, novel_negative_share, mean_score, weighted_score
FROM v_sentiment_hourly
WHERE scope_type = 'ticker';

CREATE VIEW v_ticker_sentiment_daily AS
SELECT
    bucket, scope_key AS ticker, n_articles, n_novel, n_negative, n_neutral, n_positive,
    negative_share, neutral_share, positive_share, novel_negative_share, mean_score, weighted_score
FROM v_sentiment_daily
WHERE scope_type = 'ticker';

-- Per feed (source), with its name and URL.
CREATE VIEW v_feed_sentiment_hourly AS
SELECT
    v.bucket, f.id AS feed_id, f.name AS feed_name, f.url AS feed_url,
    v.n_articles, v.n_novel, v.n_negative, v.n_neutral, v.n_positive,
    v.negative_share, v.neutral_share, v.positive_share, v.novel_negative_share,
    v.mean_score, v.weighted_score
FROM v_sentiment_hourly v
JOIN feeds f ON f.id::text = v.scope_key
WHERE v.scope_type = 'feed';

CREATE VIEW v_feed_sentiment_daily AS
SELECT
    v.bucket, f.id AS feed_id, f.name AS feed_name, f.url AS feed_url,
    v.n_articles, v.n_novel, v.n_negative, v.n_neutral, v.n_positive,
    v.negative_share, v.neutral_share, v.positive_share, v.novel_negative_share,
    v.mean_score, v.weighted_score
FROM v_sentiment_daily v
JOIN feeds f ON f.id::text = v.scope_key
WHERE v.scope_type = 'feed';

-- The whole market: every scored article once, whatever it mentions, with its own score.
CREATE VIEW v_market_sentiment_hourly AS
SELECT
    bucket, n_articles, n_novel, n_negative, n_neutral, n_positive,
    negative_share, neutral_share, positive_share, novel_negative_share, mean_score, weighted_score
FROM v_sentiment_hourly
WHERE scope_type = 'market' AND scope_key = 'all';

CREATE VIEW v_market_sentiment_daily AS
SELECT
    bucket, n_articles, n_novel, n_negative, n_neutral, n_positive,
    negative_share, neutral_share, positive_share, novel_negative_share, mean_score, weighted_score
FROM v_sentiment_daily
WHERE scope_type = 'market' AND scope_key = 'all';

-- Rolling negative share per ticker at every hour with news: the 24 hours and the 7 days
-- ending with that hour (both include it). Filter on ticker (pushed down to the rollup's
-- primary key); a time filter applies after the windows, so the rolling values stay exact.
CREATE VIEW v_ticker_negative_share_rolling AS
SELECT
    w.bucket,
    w.ticker,
    w.n_articles,
    w.n_negative::double precision / w.n_articles AS negative_share,
    w.n_24h,
    w.neg_24h::double precision / w.n_24h AS negative_share_24h,
    w.n_7d,
    w.neg_7d::double precision / w.n_7d AS negative_share_7d
FROM (
    SELECT
        h.bucket,
        h.scope_key AS ticker,
        h.n_articles,
        h.n_negative,
        sum(h.n_articles) OVER last_24h AS n_24h,
        sum(h.n_negative) OVER last_24h AS neg_24h,
        sum(h.n_articles) OVER last_7d  AS n_7d,
        sum(h.n_negative) OVER last_7d  AS neg_7d
    FROM sentiment_hourly h
    WHERE h.scope_type = 'ticker'
    WINDOW
        last_24h AS (PARTITION BY h.scope_key ORDER BY h.bucket
                     RANGE BETWEEN interval '23 hours' PRECEDING AND CURRENT ROW),
        last_7d  AS (PARTITION BY h.scope_key ORDER BY h.bucket
                     RANGE BETWEEN interval '167 hours' PRECEDING AND CURRENT ROW)
) w;

-- Alerts with their context: deliveries, and the scope's sentiment in the 24 hours before
-- the alert's window (from the hourly rollup). Alert scopes map onto rollup scopes as
-- ticker -> ticker, source (feed name) -> its feed ids, market -> market 'all'; tag alerts
-- have no rollup and show NULL context.
CREATE VIEW v_alert_history AS
SELECT
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
      -- The 24 whole hours before the hour the window starts in: a window that starts
      -- mid-hour must not count its own first hour (where the spike is) as before.
      AND h.bucket >= date_trunc('hour', al.window_start, 'UTC') - interval '24 hours'
      AND h.bucket < date_trunc('hour', al.window_start, 'UTC')
) pre ON true;
