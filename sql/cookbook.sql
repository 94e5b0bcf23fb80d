-- FinSent SQL cookbook: ready queries for the questions analysts ask most.
--
-- Every query reads the views in sql/trends_views.sql (rollups for ranges, v_article_sentiment
-- for headlines) and takes psql variables, written :'name' (psql quotes the value):
--
--   ticker        a ticker as stored in article_entities, e.g. ACME
--   now           the reference time, e.g. 2026-11-20T12:30Z, or now (the current time)
--   since         start of the period, e.g. 2026-11-13 (UTC)
--   days          length of a trend in days, e.g. 7 or 30
--   min_articles  least articles for a row to count, e.g. 3
--   limit         most rows returned, e.g. 20
--
-- In psql:  psql "$FINSENT_DATABASE_URL" -v ticker=ACME -v now=now -v since=2026-11-13 \
--                -v days=7 -v min_articles=3 -v limit=20 -f sql/cookbook.sql
-- (or \set the variables and paste one query). In Grafana, notebooks or BI tools replace each
-- :'name' with the tool's own parameter syntax. Times are UTC; buckets start at UTC hours/days.
-- PostgreSQL reads a time without a zone (since=2026-11-13) in the session's time zone, so
-- this file sets the session to UTC first; where you paste one query into a session in
-- another zone, pass times with their zone (since=2026-11-13T00:00Z) or SET timezone = 'UTC'.
-- Periods are written in hours (30 days: interval '720 hours'): PostgreSQL adds days in the
-- session's zone, where a day around a clock change has 23 or 25 hours, which would drop the
-- first day of a norm or add an hour to a chart in a session that is not UTC (JDBC tools).
-- Each query starts at a "-- name:" line; tests/trends/test_cookbook.py runs every one of them
-- against a hand-built data set and checks the rows.
--
-- Company or article sentiment: per-ticker figures (v_ticker_*, and the queries below that
-- join article_entities) are the company's own sentiment: the entity_scores row of
-- (article, ticker, the model version of the article's current score), else the article's
-- score (label_of = 'article': an article-level model, or scored before company scores).
-- Passing mentions (article_entities.relevance < 30) do not count for a company; every other
-- link counts once. Sources, the market and v_article_sentiment are the article's own score.
-- See sql/trends_company.sql.

SET timezone = 'UTC';

-- name: most_negative_vs_norm
-- Which companies turned most negative today against their own 30-day norm?
-- "Today" is the UTC day containing :'now'; the norm is the 30 UTC days before it. change is
-- today's negative share minus the norm's; z is how unlikely today's share is under the norm
-- (binomial z-score, variance floored at 0.01 so a spotless norm does not give infinity).
-- Tickers with fewer than :'min_articles' articles today, or no history, are left out.
WITH today AS (
    SELECT ticker, n_articles, negative_share
    FROM v_ticker_sentiment_daily
    WHERE bucket = date_trunc('day', :'now'::timestamptz, 'UTC')
      AND n_articles >= :'min_articles'::int
), norm AS (
    SELECT d.ticker,
           sum(d.n_articles) AS n_articles,
           sum(d.n_negative)::double precision / sum(d.n_articles) AS negative_share
    FROM v_ticker_sentiment_daily d
    WHERE d.bucket >= date_trunc('day', :'now'::timestamptz, 'UTC') - interval '720 hours'
      AND d.bucket < date_trunc('day', :'now'::timestamptz, 'UTC')
      AND d.ticker IN (SELECT ticker FROM today)
    GROUP BY d.ticker
)
SELECT
    t.ticker,
    t.n_articles AS articles_today,
    round(t.negative_share::numeric, 3) AS negative_share_today,
    n.n_articles AS articles_30d,
    round(n.negative_share::numeric, 3) AS negative_share_30d,
    round((t.negative_share - n.negative_share)::numeric, 3) AS change,
    round(((t.negative_share - n.negative_share)
           / sqrt(greatest(n.negative_share * (1 - n.negative_share), 0.01) / t.n_articles))::numeric, 2) AS z
FROM today t
JOIN norm n USING (ticker)
ORDER BY change DESC, z DESC, t.ticker
LIMIT :'limit'::int;

-- name: ticker_hourly
-- Sentiment of one ticker by hour over the last :'days' days (7 = this week), every hour
-- listed: hours without news have 0 articles and empty shares, so charts keep their time axis.
SELECT
    g.bucket,
    coalesce(h.n_articles, 0) AS articles,
    coalesce(h.n_novel, 0) AS novel,
    round(h.negative_share::numeric, 3) AS negative_share,
    round(h.positive_share::numeric, 3) AS positive_share,
    round(h.mean_score::numeric, 3) AS mean_score,
    round(h.weighted_score::numeric, 3) AS weighted_score
FROM generate_series(
    date_trunc('hour', :'now'::timestamptz - make_interval(hours => 24 * :'days'::int), 'UTC'),
    date_trunc('hour', :'now'::timestamptz, 'UTC'),
    interval '1 hour'
) AS g (bucket)
LEFT JOIN (
    -- The same bounds again, so only this period's rows are read, not the ticker's history.
    SELECT *
    FROM v_ticker_sentiment_hourly
    WHERE ticker = :'ticker'
      AND bucket >= date_trunc('hour', :'now'::timestamptz - make_interval(hours => 24 * :'days'::int), 'UTC')
      AND bucket <= :'now'::timestamptz
) h ON h.bucket = g.bucket
ORDER BY g.bucket;

-- name: top_negative_headlines
-- The most negative headlines for a ticker since :'since': negative for that company (its
-- own score from the current model, else the article's: label_of says which); first copies
-- only, so a syndicated story appears once.
SELECT
    v.published_at,
    f.name AS feed,
    v.title,
    v.url,
    round(coalesce(es.p_negative, v.p_negative)::numeric, 2) AS p_negative,
    CASE WHEN es.id IS NULL THEN 'article' ELSE 'company' END AS label_of,
    v.model_version
FROM article_entities e
JOIN v_article_sentiment v ON v.article_id = e.article_id
JOIN feeds f ON f.id = v.feed_id
LEFT JOIN entity_scores es  -- the company's own score (unique index probe)
  ON es.article_id = e.article_id AND es.ticker = e.ticker AND es.model_version = v.model_version
WHERE e.ticker = :'ticker'
  AND (e.relevance IS NULL OR e.relevance >= 30)  -- not a passing mention (docs/companies.md)
  AND e.published_at >= :'since'::timestamptz
  AND coalesce(es.label, v.label) = 'negative'
  AND v.is_novel
ORDER BY coalesce(es.p_negative, v.p_negative) DESC, v.published_at DESC
LIMIT :'limit'::int;

-- name: most_negative_sources
-- Which sources (feeds) are most negative since :'since' (whole UTC days), among those with at
-- least :'min_articles' scored articles?
SELECT
    feed_id,
    feed_name,
    sum(n_articles) AS articles,
    round((sum(n_negative)::double precision / sum(n_articles))::numeric, 3) AS negative_share,
    round((sum(mean_score * n_articles) / sum(n_articles))::numeric, 3) AS mean_score
FROM v_feed_sentiment_daily
WHERE bucket >= date_trunc('day', :'since'::timestamptz, 'UTC')
GROUP BY feed_id, feed_name
HAVING sum(n_articles) >= :'min_articles'::int
ORDER BY negative_share DESC, articles DESC, feed_id;

-- name: alerts_with_context
-- Alerts since :'since' with what preceded them: the scope's volume and negative share in the
-- 24 hours before the alert's window, and (ticker alerts) the first-copy headlines inside the
-- window most negative for that company (its own score, else the article's).
SELECT
    h.alert_id,
    h.scope_type,
    h.scope_key,
    h.state,
    h.started_at,
    h.volume,
    round(h.negative_share::numeric, 3) AS negative_share,
    round(h.baseline_share::numeric, 3) AS baseline_share,
    h.n_articles_24h_before,
    round(h.negative_share_24h_before::numeric, 3) AS negative_share_24h_before,
    h.n_sent AS notifications_sent,
    hl.headlines
FROM v_alert_history h
LEFT JOIN LATERAL (
    SELECT array_agg(top.title ORDER BY top.p_negative DESC, top.published_at) AS headlines
    FROM (
        SELECT v.title, coalesce(es.p_negative, v.p_negative) AS p_negative, v.published_at
        FROM article_entities e
        JOIN v_article_sentiment v ON v.article_id = e.article_id
        LEFT JOIN entity_scores es
          ON es.article_id = e.article_id AND es.ticker = e.ticker AND es.model_version = v.model_version
        WHERE h.scope_type = 'ticker'
          AND e.ticker = h.scope_key
          AND (e.relevance IS NULL OR e.relevance >= 30)
          AND e.published_at >= h.window_start
          AND e.published_at < h.window_end
          AND coalesce(es.label, v.label) = 'negative'
          AND v.is_novel
        ORDER BY 2 DESC, v.published_at
        LIMIT 3
    ) top
) hl ON true
WHERE h.started_at >= :'since'::timestamptz
ORDER BY h.started_at DESC;

-- name: price_join
-- Join point for price data: hourly sentiment of a ticker next to its price. Load your prices
-- into a table or view prices (ticker text, ts timestamptz, close numeric) first. close is the
-- last price of the hour, next_hour_return the change to the last price of the following hour
-- (empty when that hour has no price).
SELECT
    s.bucket,
    s.ticker,
    s.n_articles AS articles,
    round(s.negative_share::numeric, 3) AS negative_share,
    round(s.mean_score::numeric, 3) AS mean_score,
    p.close,
    round(nxt.close / p.close - 1, 4) AS next_hour_return
FROM v_ticker_sentiment_hourly s
LEFT JOIN LATERAL (
    SELECT pr.close FROM prices pr
    WHERE pr.ticker = s.ticker AND pr.ts >= s.bucket AND pr.ts < s.bucket + interval '1 hour'
    ORDER BY pr.ts DESC LIMIT 1
) p ON true
LEFT JOIN LATERAL (
    SELECT pr.close FROM prices pr
    WHERE pr.ticker = s.ticker
      AND pr.ts >= s.bucket + interval '1 hour' AND pr.ts < s.bucket + interval '2 hours'
    ORDER BY pr.ts DESC LIMIT 1
) nxt ON true
WHERE s.ticker = :'ticker'
  AND s.bucket >= :'since'::timestamptz
ORDER BY s.bucket;

-- name: market_daily
-- The whole market's mood by UTC day since :'since'.
SELECT
    (bucket AT TIME ZONE 'UTC')::date AS day,
    n_articles AS articles,
    n_novel AS novel,
    round(negative_share::numeric, 3) AS negative_share,
    round(positive_share::numeric, 3) AS positive_share,
    round(mean_score::numeric, 3) AS mean_score
FROM v_market_sentiment_daily
WHERE bucket >= date_trunc('day', :'since'::timestamptz, 'UTC')
ORDER BY bucket;

-- name: ticker_rolling_negative_share
-- Rolling 24-hour and 7-day negative share of a ticker at each hour with news since :'since'
-- (the windows also count news from before :'since').
SELECT
    bucket,
    n_articles AS articles,
    n_24h AS articles_24h,
    round(negative_share_24h::numeric, 3) AS negative_share_24h,
    n_7d AS articles_7d,
    round(negative_share_7d::numeric, 3) AS negative_share_7d
FROM v_ticker_negative_share_rolling
WHERE ticker = :'ticker'
  AND bucket >= :'since'::timestamptz
ORDER BY bucket;

-- name: most_mentioned_today
-- Volume leaders: the most-covered tickers today (UTC day of :'now'), with how unusual that
-- volume is against their daily average over the 30 days before (counting only the days
-- with any news stored: a database younger than 30 days must not make every ticker look busy).
WITH today AS (
    SELECT ticker, n_articles, negative_share
    FROM v_ticker_sentiment_daily
    WHERE bucket = date_trunc('day', :'now'::timestamptz, 'UTC')
), covered AS (
    SELECT count(*) AS days
    FROM v_market_sentiment_daily
    WHERE bucket >= date_trunc('day', :'now'::timestamptz, 'UTC') - interval '720 hours'
      AND bucket < date_trunc('day', :'now'::timestamptz, 'UTC')
), norm AS (
    SELECT ticker, sum(n_articles)::numeric AS articles
    FROM v_ticker_sentiment_daily
    WHERE bucket >= date_trunc('day', :'now'::timestamptz, 'UTC') - interval '720 hours'
      AND bucket < date_trunc('day', :'now'::timestamptz, 'UTC')
    GROUP BY ticker
)
SELECT
    t.ticker,
    t.n_articles AS articles_today,
    round(coalesce(n.articles / nullif(c.days, 0), 0), 2) AS per_day_30d,
    round(t.n_articles * c.days / n.articles, 1) AS volume_ratio,
    round(t.negative_share::numeric, 3) AS negative_share_today,
    c.days AS days_with_news_30d
FROM today t
CROSS JOIN covered c
LEFT JOIN norm n USING (ticker)
ORDER BY t.n_articles DESC, t.ticker
LIMIT :'limit'::int;

-- name: model_disagreements
-- After a model upgrade: articles since :'since' whose current label differs from the label
-- of the model version that scored them before.
SELECT
    v.article_id,
    v.published_at,
    v.title,
    prev.model_version AS previous_model,
    prev.label AS previous_label,
    v.model_version AS current_model,
    v.label AS current_label
FROM v_article_sentiment v
JOIN LATERAL (
    SELECT s.model_version, s.label
    FROM sentiment_scores s
    WHERE s.article_id = v.article_id AND s.id <> v.score_id
    ORDER BY s.scored_at DESC, s.id DESC
    LIMIT 1
) prev ON true
WHERE v.published_at >= :'since'::timestamptz
  AND prev.label <> v.label
ORDER BY v.published_at DESC;

-- name: who_is_negative_about
-- Who is negative about a ticker: each source's articles on it since :'since' and how many
-- were negative for that company (its own score from the current model, else the article's;
-- syndicated copies included: each source chose to run them).
SELECT
    f.id AS feed_id,
    f.name AS feed,
    count(*) AS articles,
    count(*) FILTER (WHERE coalesce(es.label, v.label) = 'negative') AS negative,
    round(count(*) FILTER (WHERE coalesce(es.label, v.label) = 'negative')::numeric / count(*), 3)
        AS negative_share,
    round(avg(coalesce(es.score, v.score))::numeric, 3) AS mean_score
FROM article_entities e
JOIN v_article_sentiment v ON v.article_id = e.article_id
JOIN feeds f ON f.id = v.feed_id
LEFT JOIN entity_scores es
  ON es.article_id = e.article_id AND es.ticker = e.ticker AND es.model_version = v.model_version
WHERE e.ticker = :'ticker'
  AND (e.relevance IS NULL OR e.relevance >= 30)  -- not a passing mention (docs/companies.md)
  AND e.published_at >= :'since'::timestamptz
GROUP BY f.id, f.name
ORDER BY negative_share DESC, articles DESC, f.id;

-- name: sentiment_flips_week_over_week
-- Tickers whose mean score changed sign: the last 7 UTC days (up to and including the day of
-- :'now') against the 7 days before, each with at least :'min_articles' articles.
WITH weeks AS (
    SELECT
        ticker,
        sum(n_articles) FILTER (WHERE bucket > day0 - interval '168 hours') AS n_this,
        sum(mean_score * n_articles) FILTER (WHERE bucket > day0 - interval '168 hours') AS s_this,
        sum(n_articles) FILTER (WHERE bucket <= day0 - interval '168 hours') AS n_prev,
        sum(mean_score * n_articles) FILTER (WHERE bucket <= day0 - interval '168 hours') AS s_prev
    FROM v_ticker_sentiment_daily,
         LATERAL (SELECT date_trunc('day', :'now'::timestamptz, 'UTC') AS day0) d
    WHERE bucket > day0 - interval '336 hours' AND bucket <= day0
    GROUP BY ticker
)
SELECT
    ticker,
    n_prev AS articles_prev_week,
    round((s_prev / n_prev)::numeric, 3) AS mean_score_prev_week,
    n_this AS articles_this_week,
    round((s_this / n_this)::numeric, 3) AS mean_score_this_week
FROM weeks
WHERE n_this >= :'min_articles'::int
  AND n_prev >= :'min_articles'::int
  AND sign(s_this) <> sign(s_prev)
ORDER BY abs(s_this / n_this - s_prev / n_prev) DESC, ticker;
