"""Benchmark: trend queries on rollups vs the raw tables, at tens of millions of scores.

Seeds PostgreSQL with generated scored articles (default 10 million over 2 years across 500
tickers, ticker coverage skewed like real news), builds the rollups, then times side by side:

* the 30-day hourly trend of one ticker (cookbook ``ticker_hourly``, days=30), target p95 <= 50 ms
* "most negative against its 30-day norm today" over all tickers (cookbook
  ``most_negative_vs_norm``), target <= 500 ms
* the same two questions answered from the raw tables (articles, article_entities,
  sentiment_scores with the foundation's indexes; no rollups): the baseline
* an incremental refresh after a new batch of scores, and after a model re-scores old
  articles, next to the full rebuild

Usage::

    .venv/bin/python bench/bench_trends.py --articles 10000000
    FINSENT_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_trends.py --articles 1000000

Without FINSENT_DATABASE_URL it uses (and creates) the database ``finsent_bench_<N>`` on
postgresql://postgres@127.0.0.1:5432. Seeding is resumable: it runs in chunks, one transaction
each, and a re-run continues where it stopped, or skips seeding when the data is there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.db.engine import Database, make_engine
from pipeline.db.migrate import upgrade
from pipeline.trends.cookbook import load_cookbook
from pipeline.trends.rollups import refresh_rollups

log = logging.getLogger("bench_trends")

SERVER_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
START = datetime(2024, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
FEEDS = 50
CHUNK = 500_000
BENCH_FEED_PREFIX = "bench://feed/"

SEED_ARTICLES = """
INSERT INTO articles (feed_id, item_key, guid, url, title, published_at, first_seen_at,
                      content_hash, title_key, cluster_id, is_novel)
SELECT
    f.id,
    'b' || i,
    'b' || i,
    'https://bench.example/' || i,
    'Bench headline ' || i || ' about T' || lpad(t.k::text, 3, '0'),
    ts,
    ts + interval '2 minutes',
    md5(i::text),
    NULL,
    NULL,
    i % 10 <> 0
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint) - 1) AS i
CROSS JOIN LATERAL (
    SELECT CAST(:start AS timestamptz)
           + (i * CAST(:step_us AS double precision)) * interval '1 microsecond' AS ts,
           floor(:tickers * power(random(), 1.6))::int AS k
) t
JOIN feeds f ON f.url = :feed_prefix || (i % :feeds)
"""

# One ticker per article, a second one for 20 % of them (mentions skew to big names).
SEED_ENTITIES = """
INSERT INTO article_entities (article_id, ticker, company, matched_by, published_at)
SELECT a.id, 'T' || lpad(k::text, 3, '0'), NULL, 'cashtag', a.published_at
FROM articles a
CROSS JOIN LATERAL (
    SELECT substring(a.title FROM ' about T([0-9]+)$')::int AS k
    UNION
    SELECT floor(:tickers * power(random(), 1.6))::int WHERE random() < 0.2
) t
WHERE a.id > :after
"""

SEED_SCORES = """
INSERT INTO sentiment_scores (article_id, model_version, label, p_negative, p_neutral, p_positive,
                              score, scored_at)
SELECT x.id, :model,
       CASE WHEN r < 0.3 THEN 'negative' WHEN r < 0.75 THEN 'neutral' ELSE 'positive' END,
       pn, pu, pp, pp - pn, x.first_seen_at + interval '1 minute'
FROM (
    -- random() in a subquery's select list: drawn per row (a lateral one may be drawn once).
    SELECT a.id, a.first_seen_at, random() AS r, 0.5 + 0.45 * random() AS top
    FROM articles a
    WHERE a.id > :after
) x
CROSS JOIN LATERAL (
    SELECT CASE WHEN r < 0.3 THEN top ELSE (1 - top) / 2 END AS pn,
           CASE WHEN r >= 0.3 AND r < 0.75 THEN top ELSE (1 - top) / 2 END AS pu,
           CASE WHEN r >= 0.75 THEN top ELSE (1 - top) / 2 END AS pp
) p
"""

RAW_TICKER_HOURLY = """
SELECT date_trunc('hour', e.published_at, 'UTC') AS bucket,
       count(*) AS articles,
       count(*) FILTER (WHERE s.label = 'negative')::double precision / count(*) AS negative_share,
       avg(s.score) AS mean_score
FROM article_entities e
CROSS JOIN LATERAL (
    SELECT s.label, s.score FROM sentiment_scores s
    WHERE s.article_id = e.article_id ORDER BY s.scored_at DESC, s.id DESC LIMIT 1
) s
WHERE e.ticker = :ticker
  AND e.published_at >= date_trunc('hour', CAST(:now AS timestamptz) - make_interval(days => :days), 'UTC')
  AND e.published_at <= :now
GROUP BY 1 ORDER BY 1
"""

RAW_MOST_NEGATIVE = """
WITH cur AS (
    SELECT e.ticker, e.published_at >= d.day0 AS today, s.label = 'negative' AS neg
    FROM (SELECT date_trunc('day', CAST(:now AS timestamptz), 'UTC') AS day0) d
    JOIN article_entities e
      ON e.published_at >= d.day0 - interval '30 days' AND e.published_at < d.day0 + interval '1 day'
    CROSS JOIN LATERAL (
        SELECT s.label FROM sentiment_scores s
        WHERE s.article_id = e.article_id ORDER BY s.scored_at DESC, s.id DESC LIMIT 1
    ) s
), agg AS (
    SELECT ticker,
           count(*) FILTER (WHERE today) AS n_today,
           count(*) FILTER (WHERE today AND neg)::double precision / nullif(count(*) FILTER (WHERE today), 0)
               AS share_today,
           count(*) FILTER (WHERE NOT today) AS n_norm,
           count(*) FILTER (WHERE NOT today AND neg)::double precision
               / nullif(count(*) FILTER (WHERE NOT today), 0) AS share_norm
    FROM cur GROUP BY ticker
)
SELECT ticker, n_today, share_today, n_norm, share_norm, share_today - share_norm AS change
FROM agg
WHERE n_today >= :min_articles AND n_norm > 0
ORDER BY change DESC, ticker
LIMIT :limit
"""


def bench_url(articles: int) -> str:
    env = os.environ.get("FINSENT_DATABASE_URL")
    if env:
        return env
    name = f"finsent_bench_{articles}"
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def seed(db: Database, articles: int, tickers: int) -> float:
    """Insert the generated data set (resumable); returns the seconds spent."""
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        foreign = conn.execute(
            text("SELECT count(*) FROM feeds WHERE url NOT LIKE :p"), {"p": BENCH_FEED_PREFIX + "%"}
        ).scalar_one()
        if foreign:
            raise SystemExit(f"{db.display_url} holds real feeds: refusing to seed benchmark data there")
        conn.execute(
            text(
                "INSERT INTO feeds (url, name) SELECT :p || i, 'Bench feed ' || i "
                "FROM generate_series(0, :n - 1) i ON CONFLICT (url) DO NOTHING"
            ),
            {"p": BENCH_FEED_PREFIX, "n": FEEDS},
        )
    with db.engine.connect() as conn:
        done = conn.execute(text("SELECT count(*) FROM articles")).scalar_one()
    if done >= articles:
        log.info("seed: %d articles already there, skipping", done)
        return 0.0
    if done % CHUNK and done != 0:
        raise SystemExit(f"found {done} articles, not a whole number of chunks: drop the database")
    step_us = SPAN.total_seconds() * 1e6 / articles
    for lo in range(done, articles, CHUNK):
        hi = min(lo + CHUNK, articles)
        c0 = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
            conn.execute(text("SELECT setseed(:s)"), {"s": lo / articles})
            after = conn.execute(text("SELECT coalesce(max(id), 0) FROM articles")).scalar_one()
            params = {
                "lo": lo,
                "hi": hi,
                "start": START,
                "step_us": step_us,
                "tickers": tickers,
                "feeds": FEEDS,
                "feed_prefix": BENCH_FEED_PREFIX,
            }
            conn.execute(text(SEED_ARTICLES), params)
            conn.execute(text(SEED_ENTITIES), {"after": after, "tickers": tickers})
            conn.execute(text(SEED_SCORES), {"after": after, "model": "bench-v1"})
        log.info("seed: articles %d..%d in %.1f s", lo, hi, time.perf_counter() - c0)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE articles"))
        conn.execute(text("VACUUM ANALYZE article_entities"))
        conn.execute(text("VACUUM ANALYZE sentiment_scores"))
    return time.perf_counter() - t0


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"runs": len(ms), "p50_ms": round(statistics.median(ms), 2), "p95_ms": round(p95, 2)}


def run_queries(conn: Connection, now: datetime, tickers: list[str], runs: int) -> dict[str, dict]:
    cookbook = load_cookbook()
    hourly, norm = cookbook["ticker_hourly"], cookbook["most_negative_vs_norm"]
    # Both sides: a statement built once, the same tickers in the same order, rows fetched as
    # tuples. What differs is only what the database does.
    hourly_sql, norm_sql = hourly.statement(), norm.statement()
    raw_hourly_sql, raw_norm_sql = text(RAW_TICKER_HOURLY), text(RAW_MOST_NEGATIVE)
    rollup_picks, raw_picks = itertools.cycle(tickers), itertools.cycle(tickers)
    results: dict[str, dict] = {}

    def rollup_hourly() -> object:
        return conn.execute(hourly_sql, {"ticker": next(rollup_picks), "now": now, "days": 30}).all()

    def raw_hourly() -> object:
        return conn.execute(raw_hourly_sql, {"ticker": next(raw_picks), "now": now, "days": 30}).all()

    params = {"now": now, "min_articles": 5, "limit": 20}

    def rollup_norm() -> object:
        return conn.execute(norm_sql, params).all()

    def raw_norm() -> object:
        return conn.execute(raw_norm_sql, params).all()

    # Same answer both ways, for every ticker (ties may sort differently, so compare maps).
    every = {**params, "limit": 100_000}
    a = {r["ticker"]: float(r["change"]) for r in norm.run(conn, **every)}
    b = {r.ticker: round(r.change, 3) for r in conn.execute(text(RAW_MOST_NEGATIVE), every)}
    assert a == b, f"rollups and raw tables disagree:\n{a}\n{b}"

    def server(sql, picks=None) -> Callable[[], float]:
        """The same statement's execution time inside PostgreSQL (no network, no Python)."""
        explain = text("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + str(sql))

        def run() -> float:
            p = {"ticker": next(picks), "now": now, "days": 30} if picks else params
            return conn.execute(explain, p).scalar_one()[0]["Execution Time"]

        return run

    cases = (
        ("ticker_hourly_30d.rollups", rollup_hourly, server(hourly_sql, itertools.cycle(tickers)), runs),
        ("ticker_hourly_30d.raw", raw_hourly, server(raw_hourly_sql, itertools.cycle(tickers)), runs),
        ("most_negative_vs_norm.rollups", rollup_norm, server(norm_sql), max(5, runs // 5)),
        ("most_negative_vs_norm.raw", raw_norm, server(raw_norm_sql), max(3, runs // 10)),
    )
    for name, fn, on_server, n in cases:
        fn()  # warm the cache: both sides measured hot
        results[name] = summary(timed(fn, n))
        results[name]["server_" + "p50_ms"] = round(statistics.median(on_server() for _ in range(n)), 2)
        log.info("%s: %s", name, results[name])
    for q in ("ticker_hourly_30d", "most_negative_vs_norm"):
        raw, fast = results[f"{q}.raw"], results[f"{q}.rollups"]
        results[f"{q}.speedup"] = {
            key: round(raw[key] / fast[key], 1) for key in ("p50_ms", "p95_ms", "server_p50_ms")
        }
    return results


def incremental(db: Database, now: datetime, tickers: int, batch: int) -> dict[str, dict]:
    """A new batch of scored articles in the last hour, then a model re-scoring old ones."""
    out: dict[str, dict] = {}
    with db.engine.begin() as conn:
        after = conn.execute(text("SELECT max(id) FROM articles")).scalar_one()
        n = conn.execute(text("SELECT count(*) FROM articles")).scalar_one()
        conn.execute(
            text(SEED_ARTICLES.replace("'b' || i", "'new' || i || '-' || :tag")),
            {
                "lo": 0,
                "hi": batch,
                "start": now - timedelta(minutes=59),
                "step_us": 59 * 60e6 / batch,
                "tickers": tickers,
                "feeds": FEEDS,
                "feed_prefix": BENCH_FEED_PREFIX,
                "tag": f"{n}",
            },
        )
        conn.execute(text(SEED_ENTITIES), {"after": after, "tickers": tickers})
        conn.execute(text(SEED_SCORES), {"after": after, "model": "bench-v1"})
    t0 = time.perf_counter()
    hours = refresh_rollups(db)
    out["new_batch"] = {"articles": batch, "hours": hours, "ms": round((time.perf_counter() - t0) * 1000, 1)}

    # A new model working through history in id order (what score_pending does after an
    # upgrade): consecutive articles, so a few contiguous hours per batch.
    first = random.Random(after).randrange(1, after - batch)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sentiment_scores (article_id, model_version, label, p_negative, p_neutral,"
                " p_positive, score, scored_at) "
                "SELECT id, :model, 'negative', 0.8, 0.1, 0.1, -0.7, :now FROM articles "
                "WHERE id >= :first AND id < :first + :n ON CONFLICT DO NOTHING"
            ),
            {"model": f"bench-v2-{after}", "now": now, "n": batch, "first": first},
        )
    t0 = time.perf_counter()
    hours = refresh_rollups(db)
    out["rescore_consecutive"] = {
        "articles": batch,
        "hours": hours,
        "ms": round((time.perf_counter() - t0) * 1000, 1),
    }

    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sentiment_scores (article_id, model_version, label, p_negative, p_neutral,"
                " p_positive, score, scored_at) "
                "SELECT DISTINCT 1 + floor(random() * :max)::bigint, :model, 'negative', 0.8, 0.1, 0.1,"
                " -0.7, :now "
                "FROM generate_series(1, :n) ON CONFLICT DO NOTHING"
            ),
            {"model": f"bench-v2-{after}", "now": now, "n": batch, "max": after},
        )
    t0 = time.perf_counter()
    hours = refresh_rollups(db)
    out["rescore_scattered"] = {
        "articles": batch,
        "hours": hours,
        "ms": round((time.perf_counter() - t0) * 1000, 1),
    }
    for k, v in out.items():
        log.info("refresh after %s: %s", k, v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000_000)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per rollup query")
    parser.add_argument("--batch", type=int, default=1000, help="articles in the incremental test")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--no-incremental", action="store_true", help="skip the refresh timings")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    url = bench_url(args.articles)
    engine = make_engine(url)
    upgrade(engine)
    db = Database(engine=engine, display_url=make_url(url).render_as_string(hide_password=True))
    figures: dict[str, object] = {
        "articles": args.articles,
        "tickers": args.tickers,
        "database": db.display_url,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    figures["seed_s"] = round(seed(db, args.articles, args.tickers), 1)

    t0 = time.perf_counter()
    hours = refresh_rollups(db)
    figures["initial_rollup_build"] = {"hours": hours, "s": round(time.perf_counter() - t0, 1)}
    log.info("rollups built: %s", figures["initial_rollup_build"])
    if hours:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE sentiment_hourly"))
            conn.execute(text("VACUUM ANALYZE sentiment_daily"))
    if args.seed_only:
        print(json.dumps(figures, indent=2))
        return

    with db.engine.connect() as conn:
        now = conn.execute(
            text("SELECT max(published_at) FROM articles WHERE item_key LIKE 'b%'")
        ).scalar_one()
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM sentiment_scores), "
                "(SELECT count(*) FROM article_entities), (SELECT count(*) FROM sentiment_hourly), "
                "(SELECT count(*) FROM sentiment_daily)"
            )
        ).one()
        figures["rows"] = dict(
            zip(("articles", "scores", "entities", "hourly", "daily"), map(int, counts), strict=True)
        )
        # A spread of tickers: the busiest, and a random sample of the rest.
        busiest = (
            conn.execute(
                text(
                    "SELECT scope_key FROM sentiment_daily WHERE scope_type = 'ticker' AND bucket >= :d "
                    "GROUP BY scope_key ORDER BY sum(n_articles) DESC"
                ),
                {"d": now - timedelta(days=30)},
            )
            .scalars()
            .all()
        )
        rng = random.Random(5)
        sample = busiest[:5] + rng.sample(busiest[5:], min(len(busiest) - 5, 45))
        figures["queries"] = run_queries(conn, now, sample, args.runs)
    if not args.no_incremental:
        figures["incremental_refresh"] = incremental(db, now, args.tickers, args.batch)
    db.close()
    print(json.dumps(figures, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
