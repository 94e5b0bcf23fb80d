"""The SQL behind detection and the email: per-window counts, headlines, a query for users.

Point in time: evaluating at ``now`` counts only articles first seen at or before ``now``
(``first_seen_at <= now``), so a backfill sees what a live run would have seen then. Windows
are cut by the time an article counts at (COUNTED_AT): when FinSent first saw it, if that was
within a window of its publication, else its publication. A story that reaches its feed 40
minutes after its stamp would otherwise be in no evaluation's window whole: each would see
only the part of the hour already seen, and a spike spread over the hour would never fire.
A story seen later than that (a feed back after failing, a new feed's back catalogue) stays
at its publication, in the history: it cannot pile into one window and fire.

Each article counts with its score of the evaluation's model version (the serving model's
unless one is pinned; see evaluate.evaluation_model_version), and an article that version
has not scored does not count. In a backfill that score may have been
computed after ``now``; a score is a function of the article's text, which was known at
``now``, so this leaks no future news, only a possibly newer model (pin ``model_version`` to
avoid it). Without a version (``None``, direct calls) an article counts with its latest score.
Only novel articles count: a syndicated story is one story, however many feeds carry it.

A ticker counts each article with the company's own sentiment (its ``entity_scores`` row
of the same model version, else the article's score) and leaves out passing mentions;
sources, tags and the market count the article's own score.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from pipeline.alerts.detect import Bucket
from pipeline.alerts.params import AlertParams
from pipeline.companies.relevance import counts_sql
from pipeline.masking import mask_secrets

ScopeId = tuple[str, str]  # (scope_type, scope_key); the market's key is ""

SCOPE_TYPES = ("ticker", "source", "tag", "market")

#: SQL for a source's name as alerts show it (the feed's name, else its URL); ``f`` is ``feeds``.
SOURCE_NAME_SQL = "coalesce(nullif(f.name, ''), f.url)"

#: When an article counts for alerts (``a`` is ``articles``; ``:window_s`` the window's
#: seconds): the time it was first seen when that is within a window of its publication
#: (never before its publication: a catch-up run stamps what it finds with its own earlier
#: time), else its publication time. See the module's docstring.
COUNTED_AT = (
    "CASE WHEN a.first_seen_at <= a.published_at + make_interval(secs => {window}) "
    "THEN greatest(a.published_at, a.first_seen_at) ELSE a.published_at END"
)

# The published_at bound lets the index on it narrow the scan (COUNTED_AT is at most a window
# after the publication).
_COUNTED_BETWEEN = (
    "a.published_at > CAST(:{start} AS timestamptz) - make_interval(secs => :window_s) "
    "AND a.published_at <= :now AND t.counted_at > :{start} AND t.counted_at <= :now "
    "AND a.first_seen_at <= :now AND a.is_novel"
)
_COUNTED_JOIN = f"CROSS JOIN LATERAL (SELECT {COUNTED_AT.format(window=':window_s')} AS counted_at) t"

_SCORED = f"""
a AS (
    SELECT a.id, a.feed_id,
           floor(extract(epoch FROM (CAST(:now AS timestamptz) - t.counted_at)) / :window_s)::int AS bucket
    FROM articles a
    {_COUNTED_JOIN}
    WHERE {_COUNTED_BETWEEN.format(start="since")}
      {{extra}}
),
s AS (
    SELECT DISTINCT ON (ss.article_id) ss.article_id, ss.model_version, ss.label,
           ss.p_negative, ss.p_neutral, ss.p_positive
    FROM sentiment_scores ss JOIN a ON a.id = ss.article_id
    WHERE CAST(:model_version AS text) IS NULL OR ss.model_version = CAST(:model_version AS text)
    ORDER BY ss.article_id, ss.scored_at DESC, ss.id DESC
),
x AS (
    SELECT a.id, a.feed_id, a.bucket, s.model_version, s.label, (s.label = 'negative')::int AS neg,
           CASE WHEN :confidence THEN greatest(s.p_negative, s.p_neutral, s.p_positive) ELSE 1.0 END AS w
    FROM a JOIN s ON s.article_id = a.id
)
"""

_AGG = "count(*) AS volume, sum(x.neg * x.w) AS negatives, sum(x.w) AS weight, sum(x.neg) AS n_negative"

# A passing mention (relevance below the line) does not count for its company.
COUNTS = counts_sql("e")

# A company's windows count its own sentiment: the entity score of the model version the
# article's score came from (one probe of the unique (article_id, ticker, model_version)
# index), else the article's score. Every counted link weighs 1 (or the verdict's confidence
# with weighting = confidence); a passing mention does not count at all.
COMPANY_LABEL = "coalesce(es.label, s.label)"
COMPANY_P_NEGATIVE = "coalesce(es.p_negative, s.p_negative)"
COMPANY_SCORE_JOIN = (
    "LEFT JOIN entity_scores es ON es.article_id = {article} AND es.ticker = {ticker} "
    "AND es.model_version = s.model_version"
)

_TICKER_ROWS = f"""
    SELECT e.ticker, x.bucket, (coalesce(es.label, x.label) = 'negative')::int AS neg,
           CASE WHEN NOT :confidence THEN 1.0
                WHEN es.id IS NULL THEN x.w
                ELSE greatest(es.p_negative, es.p_neutral, es.p_positive) END AS w
    FROM x JOIN article_entities e ON e.article_id = x.id AND {COUNTS}
    LEFT JOIN entity_scores es
      ON es.article_id = x.id AND es.ticker = e.ticker AND es.model_version = x.model_version
"""

_BUCKETS_SQL = f"""
WITH {_SCORED}
SELECT 'market' AS scope_type, '' AS scope_key, x.bucket, {_AGG} FROM x GROUP BY x.bucket
UNION ALL
SELECT 'ticker', t.ticker, t.bucket, count(*), sum(t.neg * t.w), sum(t.w), sum(t.neg)
FROM ({_TICKER_ROWS}) t GROUP BY t.ticker, t.bucket
UNION ALL
SELECT 'source', {SOURCE_NAME_SQL}, x.bucket, {_AGG}
FROM x JOIN feeds f ON f.id = x.feed_id GROUP BY 2, x.bucket
UNION ALL
SELECT 'tag', t.tag, x.bucket, {_AGG}
FROM x JOIN feeds f ON f.id = x.feed_id CROSS JOIN LATERAL unnest(f.tags) AS t(tag)
GROUP BY t.tag, x.bucket
"""

# An article that counts for a firing ticker is that company's news, not the market's: it
# leaves the aggregate scopes. A passing mention of the ticker does not count for it, so the
# article stays (dropping it would count it for no scope at all).
_EXCLUDE_TICKERS = f"""AND NOT EXISTS (
        SELECT 1 FROM article_entities e0
        WHERE e0.article_id = a.id AND e0.ticker = ANY(:exclude) AND {counts_sql("e0")}
      )"""


@dataclass
class ScopeSeries:
    """A scope's windows: index 0 is the current window (now - window, now], k the k-th before."""

    buckets: dict[int, Bucket]

    @property
    def current(self) -> Bucket:
        return self.buckets.get(0, Bucket())

    def history(self, n: int) -> list[Bucket]:
        return [self.buckets.get(k, Bucket()) for k in range(1, n + 1)]


def _bind(now: datetime, params: AlertParams, since: datetime, model_version: str | None) -> dict[str, Any]:
    return {
        "now": now,
        "since": since,
        "window_s": params.window.total_seconds(),
        "model_version": model_version,
        "confidence": params.weighting == "confidence",
    }


def scope_series(
    session: Session,
    *,
    now: datetime,
    params: AlertParams,
    model_version: str | None = None,
    exclude_tickers: Sequence[str] = (),
    current_only: bool = False,
) -> dict[ScopeId, ScopeSeries]:
    """Per-window counts of every scope seen in the baseline period (or only the current
    window), optionally leaving out articles that count for ``exclude_tickers``."""
    windows = 1 if current_only else params.history_buckets + 1
    since = now - params.window * windows
    extra = _EXCLUDE_TICKERS if exclude_tickers else ""
    bind = _bind(now, params, since, model_version)
    if exclude_tickers:
        bind["exclude"] = list(exclude_tickers)
    rows = session.execute(text(_BUCKETS_SQL.format(extra=extra)), bind)
    out: dict[ScopeId, dict[int, Bucket]] = defaultdict(dict)
    for scope_type, key, bucket, volume, negatives, weight, n_negative in rows:
        out[(scope_type, key)][int(bucket)] = Bucket(
            int(volume), float(negatives), float(weight), int(n_negative)
        )
    return {scope: ScopeSeries(b) for scope, b in out.items()}


_EXCLUSIVE_SQL = f"""
WITH {_SCORED.format(extra="")},
l AS (
    SELECT x.id, e.ticker FROM x JOIN article_entities e ON e.article_id = x.id AND {COUNTS}
    WHERE x.bucket = 0 AND e.ticker = ANY(:tickers)
)
SELECT l.ticker, count(*) FROM l
WHERE l.id IN (SELECT id FROM l GROUP BY id HAVING count(*) = 1)
GROUP BY l.ticker
"""


def exclusive_counts(
    session: Session,
    *,
    now: datetime,
    params: AlertParams,
    tickers: Sequence[str],
    model_version: str | None = None,
) -> dict[str, int]:
    """For each of ``tickers``, the current window's articles that count for it and for no
    other of them: one story naming three companies is one company's news three times, not
    three companies' news (what tells a broad move from a single event)."""
    bind = _bind(now, params, now - params.window, model_version)
    bind["tickers"] = list(tickers)
    return {t: int(n) for t, n in session.execute(text(_EXCLUSIVE_SQL), bind)}


def _scope_filter(scope_type: str) -> str:
    if scope_type == "source":
        return f"AND {SOURCE_NAME_SQL} = :key"
    if scope_type == "tag":
        return "AND :key = ANY(f.tags)"
    return ""


def top_headlines(
    session: Session,
    scope: ScopeId,
    *,
    now: datetime,
    window: timedelta,
    limit: int,
    model_version: str | None = None,
    exclude_tickers: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The window's most confidently negative novel articles of the scope.

    For a ticker, negative *for that company*: its entity score when there is one
    (``"label_of": "company"``), else the article's (``"label_of": "article"``); a headline
    that is bad news for a rival and good news for the company is not one of them. Other
    scopes rank by the article's own score.
    """
    scope_type, key = scope
    exclude = _EXCLUDE_TICKERS if exclude_tickers else ""
    if scope_type == "ticker":
        company = (
            f"JOIN article_entities e ON e.article_id = a.id AND e.ticker = :key AND {COUNTS}\n    "
            + COMPANY_SCORE_JOIN.format(article="a.id", ticker="e.ticker")
        )
        label, p_negative, of = COMPANY_LABEL, COMPANY_P_NEGATIVE, "es.id IS NOT NULL"
        scope_filter = ""
    else:
        company, label, p_negative, of = "", "s.label", "s.p_negative", "false"
        scope_filter = _scope_filter(scope_type)
    sql = f"""
    SELECT a.id, a.title, a.url, a.published_at, {SOURCE_NAME_SQL} AS source,
           {label} AS label, {p_negative} AS p_negative, {of} AS of_company
    FROM articles a
    {_COUNTED_JOIN}
    JOIN feeds f ON f.id = a.feed_id
    JOIN LATERAL (
        SELECT ss.model_version, ss.label, ss.p_negative FROM sentiment_scores ss
        WHERE ss.article_id = a.id
          AND (CAST(:model_version AS text) IS NULL OR ss.model_version = CAST(:model_version AS text))
        ORDER BY ss.scored_at DESC, ss.id DESC LIMIT 1
    ) s ON true
    {company}
    WHERE {_COUNTED_BETWEEN.format(start="start")}
      AND {label} = 'negative' {scope_filter} {exclude}
    ORDER BY {p_negative} DESC, a.published_at DESC, a.id
    LIMIT :limit
    """
    bind: dict[str, Any] = {
        "start": now - window,
        "now": now,
        "window_s": window.total_seconds(),
        "key": key,
        "limit": limit,
        "model_version": model_version,
    }
    if exclude_tickers:
        bind["exclude"] = list(exclude_tickers)
    return [
        {
            "article_id": r.id,
            "title": r.title,
            "url": r.url,
            "published_at": r.published_at.isoformat(),
            "source": mask_secrets(r.source),  # an unnamed feed's URL may carry credentials
            "p_negative": round(float(r.p_negative), 4),
            "label": r.label,
            "label_of": "company" if r.of_company else "article",
        }
        for r in session.execute(text(sql), bind)
    ]


def company_names(session: Session, tickers: Sequence[str]) -> dict[str, str]:
    if not tickers:
        return {}
    rows = session.execute(
        text(
            "SELECT ticker, max(company) FROM article_entities "
            "WHERE ticker = ANY(:t) AND company IS NOT NULL GROUP BY ticker"
        ),
        {"t": list(tickers)},
    )
    return {t: c for t, c in rows if c}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _source_filter(key: str) -> str:
    """The SQL condition for one source. A source without a name is its feed's URL, which
    can hold a password (``https://user:pw@host/rss``): the query travels in emails and
    webhooks, so such a key is matched by its md5 instead of written out, and named in a
    comment with its password masked."""
    masked = mask_secrets(key)
    if masked == key:
        return f"AND {SOURCE_NAME_SQL} = {_literal(key)}"
    digest = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    label = masked.replace("\r", " ").replace("\n", " ")
    return f"AND md5({SOURCE_NAME_SQL}) = '{digest}'  -- {label}"


def scope_sql(
    scope: ScopeId,
    *,
    start: datetime,
    end: datetime,
    model_version: str | None = None,
    exclude: Sequence[str] = (),
) -> str:
    """A ready-to-run query (psql) listing the articles the alert counted in a window, with
    the scores it counted: novel articles first seen by ``end``, scored by ``model_version``,
    without those that count for the ``exclude``d (firing) tickers. Its rows are the alert's
    volume and its negatives the alert's (with weighting = count)."""
    scope_type, key = scope
    filters = {
        "source": _source_filter(key),
        "tag": f"AND {_literal(key)} = ANY(f.tags)",
        "market": "",
    }
    version = f"AND ss.model_version = {_literal(model_version)}\n              " if model_version else ""
    latest = (
        "JOIN LATERAL (SELECT * FROM sentiment_scores ss WHERE ss.article_id = a.id\n"
        f"              {version}ORDER BY ss.scored_at DESC, ss.id DESC LIMIT 1) s ON true\n"
    )
    articles = (
        "FROM articles a\n"
        f"CROSS JOIN LATERAL (SELECT {COUNTED_AT.format(window=int((end - start).total_seconds()))}\n"
        "                    AS counted_at) t\n"
        "JOIN feeds f ON f.id = a.feed_id\n"
    )
    window = (
        f"WHERE t.counted_at > '{start.isoformat()}' AND t.counted_at <= '{end.isoformat()}'\n"
        f"  AND a.first_seen_at <= '{end.isoformat()}' AND a.is_novel\n"
    )
    if exclude:
        tickers = ", ".join(_literal(t) for t in exclude)
        window += (
            "  AND NOT EXISTS (SELECT 1 FROM article_entities e0 WHERE e0.article_id = a.id\n"
            f"                  AND e0.ticker IN ({tickers}) AND {counts_sql('e0')})\n"
        )
    if scope_type == "ticker":
        # The company's own label (its entity score, else the article's), as the alert counts.
        return (
            f"SELECT a.published_at, f.name AS source, {COMPANY_LABEL} AS label,\n"
            f"       round({COMPANY_P_NEGATIVE}::numeric, 3) AS p_negative,\n"
            "       CASE WHEN es.id IS NULL THEN 'article' ELSE 'company' END AS label_of,\n"
            "       e.relevance, a.title, a.url\n"
            + articles
            + f"JOIN article_entities e ON e.article_id = a.id AND e.ticker = {_literal(key)} AND {COUNTS}\n"
            + latest
            + COMPANY_SCORE_JOIN.format(article="a.id", ticker="e.ticker")
            + "\n"
            + window
            + "ORDER BY a.published_at DESC;"
        )
    return (
        "SELECT a.published_at, f.name AS source, s.label, round(s.p_negative::numeric, 3) AS p_negative,\n"
        "       a.title, a.url\n" + articles + latest + window + f"  {filters[scope_type]}\n"
        "ORDER BY a.published_at DESC;"
    )
