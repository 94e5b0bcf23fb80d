"""Benchmark: how fast each web page answers on a large database (issue #19: p95 < 200 ms at 10M).

Reuses ``bench_trends.py``'s data set (one score per article, so ``--scores N`` seeds N
articles over 2 years across 500 tickers into ``finsent_bench_<N>``, resumable and shared with
that benchmark), then adds what the pages show and the trends data lacks: alert episodes with
their deliveries and a week of fetches per feed. Each page is then requested through the app
(FastAPI's TestClient: routing, SQL, templates and SVG, no network) and timed end to end.

Pages: the market overview; company pages of the 5 busiest tickers and 25 others (by hour,
by day, and a deep page of headlines); an unknown ticker (the 404 with "did you mean");
alert pages; the feeds page.

Usage::

    .venv/bin/python bench/bench_web.py --scores 10000000
    .venv/bin/python bench/bench_web.py --scores 1000000 --runs 40 --json /tmp/web.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_trends import bench_url, seed, summary
from fastapi.testclient import TestClient

from pipeline.db.engine import Database, make_engine
from pipeline.db.migrate import upgrade
from pipeline.trends.rollups import refresh_rollups
from pipeline.web import create_app

log = logging.getLogger("bench_web")

TARGET_P95_MS = 200.0
ALERT_TICKERS = 40  # tickers with alert history; the first 8 are firing now
EPISODES = 6  # resolved episodes per ticker over the last weeks

# Alerts: per ticker, EPISODES resolved ones a few days apart and (first 8) one firing now,
# each carried by one delivery whose payload holds its headlines, as the evaluator writes.
SEED_ALERTS = """
INSERT INTO alerts (scope_type, scope_key, state, started_at, resolved_at, last_evaluated_at,
                    last_notified_at, window_start, window_end, volume, negative_share,
                    baseline_share, deviation, details)
SELECT 'ticker', t.ticker,
       CASE WHEN e.k = 0 THEN 'firing' ELSE 'resolved' END,
       s.started,
       CASE WHEN e.k = 0 THEN NULL ELSE s.started + interval '2 hours' END,
       s.started + interval '2 hours',
       s.started,
       s.started - interval '1 hour',
       s.started,
       40, 0.8, 0.3, 6.5,
       '{"baseline_periods": 28, "baseline_volume": 900, "baseline_source": "own"}'::jsonb
FROM unnest(CAST(:tickers AS text[])) WITH ORDINALITY AS t(ticker, n)
CROSS JOIN generate_series(0, :episodes) AS e(k)
CROSS JOIN LATERAL (SELECT CAST(:now AS timestamptz) - e.k * interval '3 days' AS started) s
WHERE e.k > 0 OR t.n <= 8
"""

SEED_DELIVERIES = """
WITH d AS (
    INSERT INTO alert_deliveries (alert_id, kind, dedup_key, recipients, transport, status,
                                  attempts, created_at, sent_at, evaluated_at, payload)
    SELECT a.id, 'firing', 'bench-' || a.id, ARRAY['desk@example.com'], 'outbox', 'sent', 1,
           a.started_at, a.started_at + interval '5 seconds', a.started_at,
           jsonb_build_object('items', jsonb_build_array(jsonb_build_object(
               'alert_id', a.id, 'headlines', (
                   SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'article_id', x.id, 'title', x.title, 'url', x.url,
                       'published_at', x.published_at, 'source', 'Bench feed', 'p_negative', 0.9)), '[]')
                   FROM (SELECT ar.id, ar.title, ar.url, ar.published_at FROM article_entities e
                         JOIN articles ar ON ar.id = e.article_id
                         WHERE e.ticker = a.scope_key AND e.published_at <= a.window_end
                         ORDER BY e.published_at DESC LIMIT 5) x))))
    FROM alerts a
    RETURNING id, alert_id
)
INSERT INTO alert_delivery_items (delivery_id, alert_id, kind) SELECT id, alert_id, 'firing' FROM d
"""

# A fetch every 15 minutes for a week per feed; one feed in four failing lately.
SEED_FETCHES = """
INSERT INTO fetches (feed_id, started_at, duration_ms, outcome, http_status, entries, new_articles, error)
SELECT f.id, g.t, 120,
       CASE WHEN x.failing THEN 'http_error' ELSE 'ok' END,
       CASE WHEN x.failing THEN 503 ELSE 200 END,
       30, 2,
       CASE WHEN x.failing THEN 'HTTP 503 Service Unavailable' END
FROM feeds f
CROSS JOIN generate_series(CAST(:now AS timestamptz) - interval '7 days', CAST(:now AS timestamptz),
                           interval '15 minutes') AS g(t)
CROSS JOIN LATERAL (
    SELECT f.id % 4 = 0 AND g.t > CAST(:now AS timestamptz) - interval '3 hours' AS failing
) x
"""


def seed_web(db: Database, now: datetime, tickers: list[str]) -> float:
    """Alerts, deliveries and fetches, once (a re-run finds them and skips)."""
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM alerts")).scalar_one():
            log.info("seed: alerts and fetches already there, skipping")
            return 0.0
        conn.execute(text(SEED_ALERTS), {"now": now, "tickers": tickers, "episodes": EPISODES})
        conn.execute(text(SEED_DELIVERIES))
        conn.execute(text(SEED_FETCHES), {"now": now})
        conn.execute(
            text(
                "UPDATE feeds SET last_fetched_at = :now, last_success_at = :now - interval '3 hours', "
                "consecutive_failures = CASE WHEN id % 4 = 0 THEN 12 ELSE 0 END, "
                "last_error = CASE WHEN id % 4 = 0 THEN 'HTTP 503 Service Unavailable' END, "
                "next_fetch_at = :now + interval '15 minutes'"
            ),
            {"now": now},
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("alerts", "alert_deliveries", "alert_delivery_items", "fetches", "feeds"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", type=int, default=10_000_000, help="scored articles in the data set")
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per page")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    url = bench_url(args.scores)
    engine = make_engine(url)
    upgrade(engine)
    db = Database(engine=engine, display_url=make_url(url).render_as_string(hide_password=True))
    figures: dict[str, object] = {
        "scores": args.scores,
        "database": db.display_url,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed_s": round(seed(db, args.scores, args.tickers), 1),
    }
    if refresh_rollups(db):
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE sentiment_hourly"))
            conn.execute(text("VACUUM ANALYZE sentiment_daily"))
    with db.engine.connect() as conn:
        now = conn.execute(
            text("SELECT max(published_at) FROM articles WHERE item_key LIKE 'b%'")
        ).scalar_one()
        busiest = list(
            conn.execute(
                text(
                    "SELECT scope_key FROM sentiment_daily WHERE scope_type = 'ticker' AND bucket >= :d "
                    "GROUP BY scope_key ORDER BY sum(n_articles) DESC"
                ),
                {"d": now - timedelta(days=30)},
            ).scalars()
        )
        figures["rows"] = {
            "scores": conn.execute(text("SELECT count(*) FROM sentiment_scores")).scalar_one(),
            "mentions": conn.execute(text("SELECT count(*) FROM article_entities")).scalar_one(),
        }
    figures["seed_web_s"] = round(seed_web(db, now, busiest[:ALERT_TICKERS]), 1)
    rng = random.Random(19)
    sample = busiest[:5] + rng.sample(busiest[5:], min(len(busiest) - 5, 25))
    with db.engine.connect() as conn:
        alert_ids = list(conn.execute(text("SELECT id FROM alerts ORDER BY id")).scalars())
    alerts = rng.sample(alert_ids, min(len(alert_ids), 30))

    def cycle(paths: list[str]):
        it = itertools.cycle(paths)
        return lambda: next(it)

    pages = {
        "market overview /": cycle(["/"]),
        "market overview, 30 days": cycle(["/?days=30"]),
        "company /company/T by hour (7 d)": cycle([f"/company/{t}" for t in sample]),
        "company by day (90 d)": cycle([f"/company/{t}?by=day" for t in sample]),
        "company, headlines page 40": cycle([f"/company/{t}?page=40" for t in sample]),
        "unknown ticker (404, did you mean)": cycle(["/company/T00X", "/company/TT12", "/company/ZZZZ"]),
        "alert /alert/N": cycle([f"/alert/{a}" for a in alerts]),
        "feeds": cycle(["/feeds"]),
    }
    results: dict[str, dict] = {}
    with TestClient(create_app(db, clock=lambda: now)) as client:
        for name, pick in pages.items():
            for _ in range(3):  # warm: caches, templates compiled
                client.get(pick())
            ms = []
            for _ in range(args.runs):
                path = pick()
                t0 = time.perf_counter()
                r = client.get(path)
                ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code not in (200, 404):
                    raise SystemExit(f"{path} answered {r.status_code}")
            results[name] = {**summary(ms), "p95_under_target": summary(ms)["p95_ms"] < TARGET_P95_MS}
            log.info("%s: %s", name, results[name])
    figures["pages"] = results
    db.close()
    print(json.dumps(figures, indent=2, default=str))
    print(f"\n{'page':<38} {'p50 ms':>8} {'p95 ms':>8}  (target p95 < {TARGET_P95_MS:.0f} ms)")
    for name, r in results.items():
        flag = "ok" if r["p95_under_target"] else "SLOW"
        print(f"{name:<38} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}  {flag}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
