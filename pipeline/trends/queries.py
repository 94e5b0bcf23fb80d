"""Trend series for one scope (a ticker, or the whole market), read from the rollups.

Used by ``finsent trends``; the same numbers as the v_*_sentiment_hourly/daily views, plus
the period's totals (exact: summed from the rollups' counts and sums, not averaged shares).
A ticker's trend is the company's own sentiment (see sql/trends_company.sql); its latest
headlines (:func:`company_headlines`) carry the label for that company.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, text

from pipeline.companies.relevance import counts_sql
from pipeline.db.engine import Database
from pipeline.masking import mask_secrets

log = logging.getLogger(__name__)

Granularity = Literal["hour", "day"]

_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-:^=&]{0,31}$")  # NSE writes M&M


@dataclass(frozen=True)
class Scope:
    scope_type: Literal["ticker", "market"]
    scope_key: str

    @classmethod
    def ticker(cls, ticker: str) -> Scope:
        return cls("ticker", ticker)

    @classmethod
    def market(cls) -> Scope:
        return cls("market", "all")

    @property
    def label(self) -> str:
        return "market" if self.scope_type == "market" else mask_secrets(self.scope_key)


@dataclass(frozen=True)
class TrendPoint:
    bucket: datetime
    articles: int
    novel: int
    negative: int
    neutral: int
    positive: int
    sum_score: float
    sum_confidence: float
    sum_weighted_score: float
    novel_negative: int = 0  # negative first copies: a syndicated story counts once

    @property
    def negative_share(self) -> float:
        return self.negative / self.articles

    @property
    def neutral_share(self) -> float:
        return self.neutral / self.articles

    @property
    def positive_share(self) -> float:
        return self.positive / self.articles

    @property
    def mean_score(self) -> float:
        return self.sum_score / self.articles

    @property
    def novel_negative_share(self) -> float | None:
        return self.novel_negative / self.novel if self.novel else None

    @property
    def weighted_score(self) -> float | None:
        return self.sum_weighted_score / self.sum_confidence if self.sum_confidence else None

    def as_dict(self) -> dict[str, Any]:
        """The row as ``finsent trends --json`` gives it (the table's columns, unrounded)."""
        return {
            "bucket": self.bucket.astimezone(UTC).isoformat(),
            "articles": self.articles,
            "novel": self.novel,
            "negative": self.negative,
            "neutral": self.neutral,
            "positive": self.positive,
            "negative_share": self.negative_share,
            "neutral_share": self.neutral_share,
            "positive_share": self.positive_share,
            "mean_score": self.mean_score,
            "weighted_score": self.weighted_score,
            "novel_negative_share": self.novel_negative_share,
        }


@dataclass(frozen=True)
class Trend:
    scope: Scope
    by: Granularity
    since: datetime
    until: datetime
    points: list[TrendPoint]

    @property
    def total(self) -> TrendPoint | None:
        if not self.points:
            return None
        return TrendPoint(
            bucket=self.points[0].bucket,
            articles=sum(p.articles for p in self.points),
            novel=sum(p.novel for p in self.points),
            negative=sum(p.negative for p in self.points),
            neutral=sum(p.neutral for p in self.points),
            positive=sum(p.positive for p in self.points),
            sum_score=sum(p.sum_score for p in self.points),
            sum_confidence=sum(p.sum_confidence for p in self.points),
            sum_weighted_score=sum(p.sum_weighted_score for p in self.points),
            novel_negative=sum(p.novel_negative for p in self.points),
        )

    def render(self) -> str:
        """The trend as a fixed-width table with a totals line (hours/days without news omitted)."""
        fmt = "%Y-%m-%d %H:%M" if self.by == "hour" else "%Y-%m-%d"
        buckets = f"{len(self.points)} {self.by}{'' if len(self.points) == 1 else 's'}"
        title = (
            f"{self.scope.label} sentiment by {self.by}, {self.since:%Y-%m-%d %H:%M} to "
            f"{self.until:%Y-%m-%d %H:%M} UTC ({buckets} with news)"
        )
        header = f"{'bucket (UTC)':<16}  {'articles':>8}  {'novel':>6}  {'neg%':>6}  {'neu%':>6}  {'pos%':>6}"
        header += f"  {'mean':>7}  {'weighted':>8}  {'novel neg%':>10}"
        lines = [title, header]
        for point in self.points:
            lines.append(_row(point.bucket.astimezone(UTC).strftime(fmt), point))
        total = self.total
        if total is not None:
            lines.append(_row("total", total))
        return "\n".join(lines)


def _row(label: str, p: TrendPoint) -> str:
    weighted = "-" if p.weighted_score is None else f"{p.weighted_score:+.3f}"
    novel_negative = "-" if p.novel_negative_share is None else f"{100 * p.novel_negative_share:.1f}"
    return (
        f"{label:<16}  {p.articles:>8}  {p.novel:>6}  {100 * p.negative_share:>6.1f}  "
        f"{100 * p.neutral_share:>6.1f}  {100 * p.positive_share:>6.1f}  {p.mean_score:>+7.3f}  {weighted:>8}"
        f"  {novel_negative:>10}"
    )


def normalise_ticker(value: str) -> str:
    """``$acme`` -> ``ACME``; raises ValueError naming the value when it cannot be a ticker."""
    ticker = value.strip().lstrip("$").upper()
    if not _TICKER.match(ticker):
        shown = value if len(value) <= 40 else f"{value[:40]}..."
        raise ValueError(f"{shown!r} is not a ticker (letters, digits and . - : ^ = &, at most 32)")
    return ticker


def parse_since(value: str, now: datetime) -> datetime:
    """``7d``, ``48h``, ``2w``, ``90m``, or an ISO date/time (UTC unless it has an offset).
    ValueError names the value; the caller names the option (click's BadParameter)."""
    m = _RELATIVE.match(value)
    if m:
        amount = int(m.group(1))
        if amount == 0:
            raise ValueError(f"{value!r} is an empty period: use e.g. 7d or 48h")
        try:
            return now - timedelta(**{_UNITS[m.group(2).lower()]: amount})
        except OverflowError:  # past year 1, or past what timedelta holds
            raise ValueError(
                f"{value!r} reaches back before the year 1: give a shorter period or a date"
            ) from None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            parsed = datetime.combine(date.fromisoformat(value.strip()), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a period (7d, 48h, 2w) nor an ISO date (2026-11-13)"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    try:
        parsed.astimezone(UTC)  # what the buckets use: an offset can move the year 1 out of range
    except OverflowError:
        raise ValueError(f"{value!r} reaches back before the year 1: give a later date") from None
    if parsed > now:
        raise ValueError(f"{value!r} is after now ({now:%Y-%m-%d %H:%M} UTC)")
    return parsed


def bucket_start(when: datetime, by: Granularity) -> datetime:
    """The start (UTC) of the hour or day that contains ``when``."""
    when = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0) if by == "day" else when


def load_trend(db: Database, scope: Scope, *, since: datetime, now: datetime, by: Granularity) -> Trend:
    """Buckets of ``scope`` from the one containing ``since`` up to ``now``, oldest first."""
    table = "sentiment_hourly" if by == "hour" else "sentiment_daily"
    sql = text(
        f"""
        SELECT bucket, n_articles, n_novel, n_negative, n_neutral, n_positive,
               sum_score, sum_confidence, sum_weighted_score, n_novel_negative
        FROM {table}
        WHERE scope_type = :scope_type AND scope_key = :scope_key
          AND bucket >= date_trunc(:by, CAST(:since AS timestamptz), 'UTC')
          AND bucket <= :now
        ORDER BY bucket
        """
    )
    params = {"scope_type": scope.scope_type, "scope_key": scope.scope_key, "by": by, "since": since}
    with db.engine.connect() as conn:
        rows = conn.execute(sql, {**params, "now": now}).all()
    return Trend(
        scope=scope,
        by=by,
        since=bucket_start(since, by),  # rollups hold whole buckets: say where the first starts
        until=now,
        points=[TrendPoint(*row) for row in rows],
    )


def ticker_known(db: Database, ticker: str) -> bool:
    """Whether any article ever mentioned ``ticker`` (to tell a typo from a quiet period)."""
    with db.engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM article_entities WHERE ticker = :t LIMIT 1"), {"t": ticker}
        ).first()
    return found is not None


# A loose index scan of (ticker, published_at): one index probe per distinct ticker, not a
# scan of every mention (tens of millions of rows).
_DISTINCT_TICKERS = text(
    """
    WITH RECURSIVE t(ticker) AS (
        (SELECT ticker FROM article_entities ORDER BY ticker LIMIT 1)
        UNION ALL
        SELECT (SELECT e.ticker FROM article_entities e
                WHERE e.ticker > t.ticker ORDER BY e.ticker LIMIT 1)
        FROM t WHERE t.ticker IS NOT NULL
    )
    SELECT ticker FROM t WHERE ticker IS NOT NULL
    """
)


def known_tickers(conn: Connection) -> list[str]:
    """Every ticker some article mentioned, sorted."""
    return list(conn.execute(_DISTINCT_TICKERS).scalars())


def similar_tickers(db: Database, ticker: str, limit: int = 3) -> list[str]:
    """Tickers that articles mentioned and that look like ``ticker`` (for a "did you mean")."""
    with db.engine.connect() as conn:
        known = known_tickers(conn)
    return difflib.get_close_matches(ticker, known, n=limit, cutoff=0.6)


@dataclass(frozen=True)
class CompanyHeadline:
    """A headline as it counts for one company: its label for that company."""

    published_at: datetime
    title: str
    source: str
    label: str
    p_negative: float
    p_positive: float
    label_of: Literal["company", "article"]  # article: no company score, the article's label
    relevance: int | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "published_at": self.published_at.astimezone(UTC).isoformat()}

    def render(self) -> str:
        when = self.published_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        mark = " (article)" if self.label_of == "article" else ""
        title = " ".join(self.title.split())
        return f"{when}  {self.label + mark:<18}  {title} [{self.source}]"


# The company's newest counted mentions (the (ticker, published_at) index, newest first),
# first copies only, each with its current score and the company's own score of that model
# version (unique (article_id, ticker, model_version) index): the rows the trend counts.
_COMPANY_HEADLINES = f"""
    SELECT a.published_at, a.title, coalesce(nullif(f.name, ''), f.url) AS source,
           coalesce(es.label, s.label) AS label,
           coalesce(es.p_negative, s.p_negative) AS p_negative,
           coalesce(es.p_positive, s.p_positive) AS p_positive,
           CASE WHEN es.id IS NULL THEN 'article' ELSE 'company' END AS label_of,
           e.relevance
    FROM article_entities e
    JOIN articles a ON a.id = e.article_id
    JOIN feeds f ON f.id = a.feed_id
    CROSS JOIN LATERAL (
        SELECT ss.model_version, ss.label, ss.p_negative, ss.p_positive FROM sentiment_scores ss
        WHERE ss.article_id = a.id ORDER BY ss.scored_at DESC, ss.id DESC LIMIT 1
    ) s
    LEFT JOIN entity_scores es
      ON es.article_id = a.id AND es.ticker = e.ticker AND es.model_version = s.model_version
    WHERE e.ticker = :ticker AND {counts_sql("e")}
      AND e.published_at >= :since AND e.published_at <= :now AND a.is_novel
    ORDER BY e.published_at DESC, e.article_id DESC
    LIMIT :limit
"""


def company_headlines(
    db: Database, ticker: str, *, since: datetime, now: datetime, limit: int
) -> list[CompanyHeadline]:
    """The ticker's newest scored first-copy headlines in [since, now] that count for it (no
    passing mentions), each labelled for that company: its entity score when the current
    model wrote one, else the article's label (``label_of="article"``)."""
    if limit <= 0:
        return []
    bind = {"ticker": ticker, "since": since, "now": now, "limit": limit}
    with db.engine.connect() as conn:
        rows = conn.execute(text(_COMPANY_HEADLINES), bind).all()
    # A source without a name is its feed URL, which may carry credentials.
    return [CompanyHeadline(*row[:2], mask_secrets(row[2]), *row[3:]) for row in rows]
