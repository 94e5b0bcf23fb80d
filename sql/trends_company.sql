-- FinSent trends: company-level sentiment in the ticker rollups.
--
-- Created by Alembic migration 0013 (pipeline/db/migrations/versions/0013_entity_score_triggers.py,
-- which embeds this text; tests/trends/test_sql.py checks that they are identical).
--
-- Which sentiment each scope reads:
--   * ticker scopes (sentiment_hourly/daily rows with scope_type 'ticker', so
--     v_ticker_sentiment_*, v_ticker_negative_share_rolling, ticker alerts): the company's
--     own sentiment. For each article that counts for the company (article_entities link
--     with relevance NULL or >= 30: a passing mention does not count), the entity_scores row
--     of (article, ticker, model version of the article's current score); when there is
--     none (an article-level model, an article scored before company scoring), the article's
--     own score. Every counted link weighs 1: relevance decides whether an article counts
--     for a company, not how much.
--   * feed and market scopes (v_feed_*, v_market_*, source/tag/market alerts) and
--     v_article_sentiment: the article's own score (sentiment_scores), whatever companies
--     it names.
--
-- Company scores added, changed or removed must recompute the hours of their articles, like
-- article scores do: the same queue function as sentiment_scores (sql/trends_rollups.sql),
-- whose transition table needs only article_id.

CREATE TRIGGER trends_entity_scores_insert AFTER INSERT ON entity_scores
    REFERENCING NEW TABLE AS changed_scores
    FOR EACH STATEMENT EXECUTE FUNCTION trends_queue_score_hours();
CREATE TRIGGER trends_entity_scores_update AFTER UPDATE ON entity_scores
    REFERENCING NEW TABLE AS changed_scores
    FOR EACH STATEMENT EXECUTE FUNCTION trends_queue_score_hours();
CREATE TRIGGER trends_entity_scores_delete AFTER DELETE ON entity_scores
    REFERENCING OLD TABLE AS changed_scores
    FOR EACH STATEMENT EXECUTE FUNCTION trends_queue_score_hours();

-- Hours whose articles already have company scores are stale when this revision appears.
INSERT INTO trends_dirty_hours (bucket)
SELECT DISTINCT date_trunc('hour', a.published_at, 'UTC')
FROM articles a
WHERE EXISTS (SELECT 1 FROM entity_scores s WHERE s.article_id = a.id);
