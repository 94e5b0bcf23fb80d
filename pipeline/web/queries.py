"""The few reads the web pages need that no other module has.

Trends, the "most negative against its norm" ranking, an alert's top headlines, ticker
suggestions and company names come from ``pipeline.trends`` and ``pipeline.alerts``; this
module adds only what they lack: every company with news in a period (one page at a time),
a company's headlines newest first (one page at a time),
an alert's deliveries and the scope's silences, each feed's last fetch and intake, and company
names read at a bounded cost.
Every list is read one page at a time (LIMIT n + 1 tells whether there is a next page), so
no page counts a ticker's whole history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pipeline.alerts.queries import SOURCE_NAME_SQL
from pipeline.companies.relevance import PASSING_MENTION
from pipeline.db.engine import Database
from pipeline.db.models import Alert, AlertDelivery, AlertDeliveryItem, AlertSilence
from pipeline.trends.queries import Granularity, Scope, Trend, TrendPoint, bucket_start

# The company's name as its latest mentions give it. alerts.queries.company_names reads every
# mention of a ticker (fine for one email, hundreds of milliseconds for a busy ticker on every
# page view); the newest RECENT mentions carry the name whenever the ingest knows it.
_RECENT_NAMES = text(
    """
    SELECT t.ticker, c.company
    FROM unnest(CAST(:tickers AS text[])) AS t(ticker)
    CROSS JOIN LATERAL (
        SELECT max(x.company) AS company FROM (
            SELECT e.company FROM article_entities e
            WHERE e.ticker = t.ticker ORDER BY e.published_at DESC LIMIT 200
        ) x
    ) c
    WHERE c.company IS NOT NULL
    """
)


def company_names(session: Session, tickers: list[str]) -> dict[str, str]:
    """Ticker -> company name, from each ticker's latest mentions (bounded cost per ticker)."""
    if not tickers:
        return {}
    return dict(session.execute(_RECENT_NAMES, {"tickers": list(tickers)}).tuples().all())


# load_trend for many feeds in one statement (the overview shows a chart per source: one
# query each would be 20 round trips with their pool checkouts). Same columns, same bounds.
_FEED_TRENDS = """
    SELECT scope_key, bucket, n_articles, n_novel, n_negative, n_neutral, n_positive,
           sum_score, sum_confidence, sum_weighted_score, n_novel_negative
    FROM {table}
    WHERE scope_type = 'feed' AND scope_key = ANY(:keys)
      AND bucket >= date_trunc(:by, CAST(:since AS timestamptz), 'UTC')
      AND bucket <= :now
    ORDER BY scope_key, bucket
"""


def feed_trends(
    db: Database, feed_ids: list[int], *, since: datetime, now: datetime, by: Granularity
) -> dict[int, Trend]:
    """Each feed's trend, as ``load_trend(db, Scope("feed", id), ...)`` gives it, in one query."""
    table = "sentiment_hourly" if by == "hour" else "sentiment_daily"
    points: dict[int, list[TrendPoint]] = {i: [] for i in feed_ids}
    if feed_ids:
        bind = {"keys": [str(i) for i in feed_ids], "by": by, "since": since, "now": now}
        with db.engine.connect() as conn:
            for key, *row in conn.execute(text(_FEED_TRENDS.format(table=table)), bind):
                points[int(key)].append(TrendPoint(*row))
    start = bucket_start(since, by)
    return {
        i: Trend(Scope("feed", str(i)), by, start, now, pts)  # type: ignore[arg-type]
        for i, pts in points.items()
    }


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    number: int  # 1-based
    has_next: bool


def _page(rows: list[Any], number: int, size: int) -> Page:
    return Page(rows=rows[:size], number=number, has_next=len(rows) > size)


# Companies with news since a day, busiest first, from the daily rollups (what the company
# pages and alerts count: each company's own labels, passing mentions left out); the
# (scope_type, bucket) index reads only the period's rows.
_COMPANIES = text(
    """
    SELECT scope_key AS ticker, sum(n_articles) AS articles,
           sum(n_negative)::double precision / nullif(sum(n_articles), 0) AS negative_share,
           sum(n_positive)::double precision / nullif(sum(n_articles), 0) AS positive_share,
           max(bucket) AS last_day
    FROM sentiment_daily
    WHERE scope_type = 'ticker' AND bucket >= :since AND bucket <= :now
    GROUP BY scope_key
    HAVING sum(n_articles) > 0
    ORDER BY sum(n_articles) DESC, scope_key
    LIMIT :limit OFFSET :offset
    """
)


def companies_page(session: Session, *, since: datetime, now: datetime, page: int, size: int) -> Page:
    """A page of the companies with news between the UTC day of ``since`` and ``now``, the
    busiest first: articles, negative and positive shares, the last day with news."""
    rows = session.execute(
        _COMPANIES,
        {
            "since": bucket_start(since, "day"),
            "now": now,
            "limit": size + 1,
            "offset": (page - 1) * size,
        },
    ).all()
    return _page(list(rows), page, size)


# The (ticker, published_at) index gives the newest mentions first; the page is cut from the
# mentions alone (an OFFSET over the joined rows would read the skipped rows' articles and
# scores too), then only its rows read their article, feed, latest score and the company's
# own score of that model version (one probe of the unique (article_id, ticker,
# model_version) index). label_of says whose label it is: "company" (the entity score),
# "article" (none for this company: the article's stands in) or NULL (unscored). Passing
# mentions are listed too (relevance says so); trends and alerts leave them out.
_COMPANY_HEADLINES = text(
    f"""
    WITH page AS (
        SELECT e.article_id, e.published_at, e.relevance FROM article_entities e
        WHERE e.ticker = :ticker AND e.published_at <= :now
        ORDER BY e.published_at DESC, e.article_id DESC
        LIMIT :limit OFFSET :offset
    )
    SELECT a.id, a.title, a.url, a.published_at, {SOURCE_NAME_SQL} AS source, a.is_novel,
           coalesce(es.label, s.label) AS label,
           coalesce(es.p_negative, s.p_negative) AS p_negative,
           coalesce(es.p_neutral, s.p_neutral) AS p_neutral,
           coalesce(es.p_positive, s.p_positive) AS p_positive,
           s.model_version,
           CASE WHEN es.id IS NOT NULL THEN 'company' WHEN s.label IS NOT NULL THEN 'article' END
               AS label_of,
           e.relevance,
           e.relevance IS NOT NULL AND e.relevance < {PASSING_MENTION} AS passing
    FROM page e
    JOIN articles a ON a.id = e.article_id
    JOIN feeds f ON f.id = a.feed_id
    LEFT JOIN LATERAL (
        SELECT ss.label, ss.p_negative, ss.p_neutral, ss.p_positive, ss.model_version
        FROM sentiment_scores ss WHERE ss.article_id = a.id
        ORDER BY ss.scored_at DESC, ss.id DESC LIMIT 1
    ) s ON true
    LEFT JOIN entity_scores es
      ON es.article_id = a.id AND es.ticker = :ticker AND es.model_version = s.model_version
    ORDER BY e.published_at DESC, e.article_id DESC
    """
)


def company_headlines(session: Session, ticker: str, *, now: datetime, page: int, size: int) -> Page:
    """A page of the articles that mention ``ticker``, newest first, each with its label for
    that company (the entity score of the article's current model, else the article's)."""
    rows = session.execute(
        _COMPANY_HEADLINES,
        {"ticker": ticker, "now": now, "limit": size + 1, "offset": (page - 1) * size},
    ).all()
    return _page(list(rows), page, size)


def alerts_page(
    session: Session,
    *,
    firing: bool,
    page: int,
    size: int,
    scope_type: str | None = None,
    scope_key: str | None = None,
) -> Page:
    """Firing alerts (strongest first) or past ones (newest first), optionally of one scope."""
    query = select(Alert)
    if firing:
        query = query.where(Alert.state == "firing").order_by(Alert.deviation.desc(), Alert.id)
    else:
        query = query.where(Alert.state != "firing").order_by(Alert.started_at.desc(), Alert.id.desc())
    if scope_type is not None:
        query = query.where(Alert.scope_type == scope_type, Alert.scope_key == scope_key)
    rows = list(session.scalars(query.limit(size + 1).offset((page - 1) * size)))
    return _page(rows, page, size)


def scope_episodes(session: Session, scope_type: str, scope_key: str, *, since: datetime) -> list[Alert]:
    """The scope's alerts that were open at some time after ``since`` (for the chart)."""
    query = (
        select(Alert)
        .where(Alert.scope_type == scope_type, Alert.scope_key == scope_key)
        .where((Alert.resolved_at.is_(None)) | (Alert.resolved_at >= since))
        .order_by(Alert.started_at)
    )
    return list(session.scalars(query))


def alert_deliveries(session: Session, alert_id: int) -> list[tuple[AlertDelivery, str]]:
    """Every email that carried the alert (grouped emails included), oldest first, with the
    kind it carried the alert as (firing, repeat, resolved)."""
    query = (
        select(AlertDelivery, AlertDeliveryItem.kind)
        .join(AlertDeliveryItem, AlertDeliveryItem.delivery_id == AlertDelivery.id)
        .where(AlertDeliveryItem.alert_id == alert_id)
        .order_by(AlertDelivery.created_at, AlertDelivery.id)
    )
    return [(d, kind) for d, kind in session.execute(query).all()]


def scope_silences(
    session: Session, scope_type: str, scope_key: str, *, since: datetime
) -> list[AlertSilence]:
    """Silences of the scope that ended after ``since`` (those that touched the episode)."""
    query = (
        select(AlertSilence)
        .where(AlertSilence.scope_type == scope_type, AlertSilence.scope_key == scope_key)
        .where(AlertSilence.ends_at > since)
        .order_by(AlertSilence.starts_at, AlertSilence.id)
    )
    return list(session.scalars(query))


# One index probe per feed (ix_fetches_feed_started) for the last attempt; intake summed
# over the period's fetches only.
_FEED_HEALTH = text(
    """
    SELECT f.id,
           last.started_at AS last_fetch_at, last.outcome, last.http_status, last.error,
           coalesce(intake.new_articles, 0) AS new_articles
    FROM feeds f
    LEFT JOIN LATERAL (
        SELECT x.started_at, x.outcome, x.http_status, x.error FROM fetches x
        WHERE x.feed_id = f.id ORDER BY x.started_at DESC, x.id DESC LIMIT 1
    ) last ON true
    LEFT JOIN LATERAL (
        SELECT sum(x.new_articles) AS new_articles FROM fetches x
        WHERE x.feed_id = f.id AND x.started_at > :since AND x.started_at <= :now
    ) intake ON true
    WHERE f.id = ANY(:ids)
    """
)


@dataclass(frozen=True)
class FeedHealth:
    last_fetch_at: datetime | None
    outcome: str | None
    http_status: int | None
    error: str | None
    new_articles: int


def feed_health(
    session: Session, feed_ids: list[int], *, since: datetime, now: datetime
) -> dict[int, FeedHealth]:
    """Each feed's last fetch and the articles its fetches added between ``since`` and ``now``."""
    if not feed_ids:
        return {}
    rows = session.execute(_FEED_HEALTH, {"ids": feed_ids, "since": since, "now": now})
    return {
        r.id: FeedHealth(r.last_fetch_at, r.outcome, r.http_status, r.error, int(r.new_articles))
        for r in rows
    }
