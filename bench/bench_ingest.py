"""Ingestion throughput: a naive loop vs FinSent's ingest, side by side in one run.

Generates FEEDS feeds of ITEMS items each, serves them from a local HTTP server (a
separate process: http.server's static handler, which answers If-Modified-Since with 304),
and stores into a fresh database on FINSENT_DATABASE_URL's server (or an embedded
PostgreSQL). Usage::

    .venv/bin/python bench/bench_ingest.py --feeds 1000 --items 50

Rows:
  feedparser alone   feedparser.parse() of every body already in memory (default options):
                     the ceiling for anything that uses feedparser on these cores
  baseline           sequential feedparser.parse(url) + one ORM insert and commit per entry
                     (on the first --baseline-feeds feeds; it is slow), as entries/s
  finsent            ingest(): concurrent conditional fetch, parse, normalise, link, batched upsert
  re-ingest 304      the same feeds again: the server answers 304 Not Modified
  re-ingest same     again without validators: same bytes, recognised by hash, not parsed
  re-ingest parse    again, forced to parse: every item is a duplicate (informational)
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from pipeline.paths import REPO_ROOT

COMPANIES = [
    ("Voltara Motors", "VLTA"),
    ("Northwind Semiconductor", "NRTH"),
    ("Brookline Pharmaceuticals", "BRKL"),
    ("Harborline Energy", "HBLE"),
    ("Crestview Bancorp", "CRSV"),
    ("Orbix Cloud Systems", "ORBX"),
]
VERBS = [
    "beats estimates",
    "cuts guidance",
    "wins contract",
    "faces probe",
    "raises dividend",
    "misses forecasts",
]


def make_feed(i: int, items: int, now: datetime, rng: random.Random) -> bytes:
    out = []
    for j in range(items):
        name, ticker = rng.choice(COMPANIES)
        title = f"{name} {rng.choice(VERBS)} as quarter {j % 4 + 1} results land, report {i}-{j}"
        desc = (
            f"<p>{escape(name)} (NASDAQ: {ticker}) said on Tuesday that revenue rose "
            f"{rng.randint(1, 30)}% &amp; margins improved. <a href='https://x.example.com/{j}'>More</a></p>"
        )
        when = format_datetime(now - timedelta(minutes=rng.randint(1, 4000)), usegmt=True)
        out.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://pub{i % 50}.example.com/news/{i}/{j}?utm_source=rss&amp;utm_medium=feed</link>"
            f'<guid isPermaLink="false">feed{i}-item{j}</guid><pubDate>{when}</pubDate>'
            f"<description>{escape(desc)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {i}</title><link>https://pub{i % 50}.example.com/</link>"
        f"<description>bench</description><language>en-us</language>{''.join(out)}</channel></rss>"
    ).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(directory: str, port: int) -> None:
    """The bench's feed server (run in its own process): static files, Last-Modified and
    If-Modified-Since (304) from SimpleHTTPRequestHandler, keep-alive, a deep accept queue."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body are separate writes: without this, delayed ACKs add 40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024  # the default 5 drops SYNs under concurrency: 1 s retransmits
        daemon_threads = True

    Server(("127.0.0.1", port), functools.partial(Handler, directory=directory)).serve_forever()


def start_server(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(directory), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, base
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the local HTTP server did not start")


def open_bench_database(tmp: Path):
    """(url, cleanup): a fresh database on the configured server, or an embedded one."""
    from sqlalchemy import create_engine, make_url, text

    server = os.environ.get("FINSENT_DATABASE_URL") or os.environ.get("FINSENT_TEST_DATABASE_URL")
    if not server:
        from pipeline.db.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(tmp / "pgdata")
        return embedded.start(), embedded.close
    name = f"finsent_bench_{uuid.uuid4().hex[:8]}"
    admin_url = make_url(server.replace("postgres://", "postgresql://", 1)).set(
        drivername="postgresql+psycopg2"
    )
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


def run_feedparser_alone(bodies: list[bytes]) -> tuple[int, float]:
    import feedparser

    start = time.perf_counter()
    n = sum(len(feedparser.parse(io.BytesIO(b)).entries) for b in bodies)
    return n, time.perf_counter() - start


def run_baseline(db, urls: list[str], now: datetime) -> tuple[int, float]:
    """The naive loop the issue measures against: parse(url), one insert + commit per entry."""
    import hashlib

    import feedparser
    from sqlalchemy.dialects.postgresql import insert

    from pipeline.db.models import Article, Feed

    with db.transaction() as session:
        feed_ids = [
            session.execute(insert(Feed).values(url=u + "?baseline").returning(Feed.id)).scalar_one()
            for u in urls
        ]
    start = time.perf_counter()
    n = 0
    with db.session() as session:
        for feed_id, url in zip(feed_ids, urls, strict=True):
            parsed = feedparser.parse(url)
            for e in parsed.entries:
                text = f"{e.get('title', '')}\n{e.get('summary', '')}"
                session.add(
                    Article(
                        feed_id=feed_id,
                        item_key=e.get("id") or e.get("link"),
                        guid=e.get("id"),
                        url=e.get("link"),
                        title=e.get("title", ""),
                        summary=e.get("summary"),
                        published_at=now,
                        first_seen_at=now,
                        content_hash=hashlib.sha256(text.encode()).hexdigest(),
                    )
                )
                session.commit()
                n += 1
    return n, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--baseline-feeds", type=int, default=100, help="Feeds for the (slow) baseline loop.")
    ap.add_argument("--concurrency", type=int, default=16, help="fetch_concurrency for FinSent.")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return

    import logging

    from sqlalchemy import text, update

    from pipeline.db.engine import Database, make_engine
    from pipeline.db.migrate import upgrade
    from pipeline.db.models import Feed
    from pipeline.ingest.registry import add_feeds
    from pipeline.ingest.service import ingest
    from pipeline.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="finsent-bench-") as tmpdir:
        tmp = Path(tmpdir)
        feeds_dir = tmp / "feeds"
        feeds_dir.mkdir()
        bodies = []
        for i in range(args.feeds):
            body = make_feed(i, args.items, now, rng)
            (feeds_dir / f"feed{i}.xml").write_bytes(body)
            bodies.append(body)
        server, base = start_server(feeds_dir)
        url, cleanup = open_bench_database(tmp)
        try:
            engine = make_engine(url)
            upgrade(engine)
            db = Database(engine=engine, display_url="bench")
            urls = [f"{base}/feed{i}.xml" for i in range(args.feeds)]
            rows: list[tuple[str, int, float]] = []

            n, dt = run_feedparser_alone(bodies)
            rows.append(("feedparser alone (parse only)", n, dt))
            n, dt = run_baseline(db, urls[: args.baseline_feeds], now)
            rows.append((f"baseline ({args.baseline_feeds} feeds)", n, dt))
            with engine.begin() as conn:
                conn.execute(
                    text("TRUNCATE feeds, fetches, articles, article_entities RESTART IDENTITY CASCADE")
                )

            settings = load_settings(
                database_url=url,
                data_dir=tmp / "data",
                fetch_concurrency=args.concurrency,
                watchlist_path=REPO_ROOT / "pipeline" / "ingest" / "demo" / "watchlist.csv",
            ).settings
            with db.transaction() as session:
                add_feeds(session, urls)

            def timed(label: str) -> None:
                t = time.perf_counter()
                report = ingest(db, settings, now=now)
                dt = time.perf_counter() - t
                assert report.failed == 0, report.render()
                rows.append((label, report.new + report.updated + report.duplicates, dt))

            timed("finsent ingest (first pass)")
            timed("re-ingest, all 304")
            with db.transaction() as session:
                session.execute(update(Feed).values(etag=None, last_modified=None))
            timed("re-ingest, same bytes (no validators)")
            with db.transaction() as session:
                session.execute(update(Feed).values(etag=None, last_modified=None, body_hash=None))
            timed("re-ingest, parsed, all duplicates")
            db.close()
        finally:
            server.terminate()
            server.wait()
            cleanup()

    fp_rate = rows[0][1] / rows[0][2]
    base_rate = rows[1][1] / rows[1][2]
    first = rows[2][2]
    cores = len(os.sched_getaffinity(0))
    print(f"\nbench_ingest: {args.feeds} feeds x {args.items} items, concurrency {args.concurrency}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    columns = ("entries", "seconds", "entries/s", "vs base", "vs fp", "vs 1st")
    header = f"{'run':<40} " + " ".join(
        f"{c:>{w}}" for c, w in zip(columns, (8, 8, 10, 8, 6, 7), strict=True)
    )
    print(header)
    print("-" * len(header))
    for label, n, dt in rows:
        rate = n / dt if dt else float("inf")
        vs_first = f"{first / dt:6.1f}x" if label.startswith("re-ingest") else ""
        print(
            f"{label:<40} {n:>8} {dt:>8.2f} {rate:>10.0f} {rate / base_rate:>7.1f}x {rate / fp_rate:>5.2f}x "
            f"{vs_first:>7}"
        )
    finsent_rate = rows[2][1] / rows[2][2]
    print(
        f"\ntargets: finsent >= 10x baseline: {finsent_rate / base_rate:.1f}x; "
        f">= 0.70x feedparser alone: {finsent_rate / fp_rate:.2f}x; "
        f"re-ingest >= 5x faster than first pass: 304 {first / rows[3][2]:.1f}x, "
        f"same bytes {first / rows[4][2]:.1f}x"
    )


if __name__ == "__main__":
    main()
