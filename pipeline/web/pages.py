"""What each page shows, gathered from the database (no HTML here: templates render it).

Each function reads "now" once from its caller, so a page is one consistent moment.
Trend series come from the rollups through ``pipeline.trends.queries.load_trend``; the
ranking of companies against their norm is the cookbook's ``most_negative_vs_norm``; an
alert's headlines are the ones its email carried (the delivery's frozen payload) or, when it
sent none, ``pipeline.alerts.queries.top_headlines`` over its window.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipeline.alerts.queries import top_headlines
from pipeline.alerts.silences import DURATIONS, SilenceSet, add_silence_for
from pipeline.db.engine import Database
from pipeline.db.models import Alert, AlertSilence, Correction
from pipeline.errors import FinSentError
from pipeline.feedback import (
    CorrectionRow,
    Recorded,
    corrections_on_page,
    own_corrections,
    record,
    withdraw_own,
)
from pipeline.ingest.registry import list_feeds
from pipeline.masking import mask_secrets
from pipeline.trends.cookbook import load_cookbook
from pipeline.trends.queries import (
    Granularity,
    Scope,
    Trend,
    bucket_start,
    known_tickers,
    load_trend,
    normalise_ticker,
    similar_tickers,
    ticker_known,
)
from pipeline.web import queries
from pipeline.web.charts import Band, Chart, Line, render_svg, sparkline

log = logging.getLogger(__name__)

PAGE_SIZE = 25
SOURCES_PER_PAGE = 20
NORM_DAYS = 30  # the cookbook's norm: the 30 UTC days before today
MOVERS = 10
MOVER_MIN_ARTICLES = 3
HEADLINES_SHOWN = 5


@dataclass(frozen=True)
class Unknown:
    """A ticker no article mentions: the 404 page's message and its "did you mean"."""

    message: str
    suggestions: list[str] = field(default_factory=list)


def _step(by: Granularity) -> timedelta:
    return timedelta(hours=1) if by == "hour" else timedelta(days=1)


def _series(trend: Trend) -> tuple[list[datetime], list[Any]]:
    """Every bucket of the trend's period, with the rollup's point or None (no news)."""
    step = _step(trend.by)
    by_bucket = {p.bucket: p for p in trend.points}
    buckets, points = [], []
    when = trend.since
    while when <= trend.until:
        buckets.append(when)
        points.append(by_bucket.get(when))
        when += step
    return buckets, points


def trend_chart(
    trend: Trend, title: str, *, baseline: float | None = None, bands: list[Band] | None = None
) -> str:
    buckets, points = _series(trend)
    step = _step(trend.by)
    return render_svg(
        Chart(
            title=title,
            start=trend.since,
            end=(buckets[-1] + step) if buckets else trend.until,
            step=step,
            buckets=buckets,
            volumes=[p.articles if p else 0 for p in points],
            lines=[
                Line("negative share", [p.negative_share if p else None for p in points], "#cf222e"),
                Line("positive share", [p.positive_share if p else None for p in points], "#1a7f37"),
            ],
            baseline=baseline,
            bands=bands or [],
        )
    )


def _norm(db: Database, scope: Scope, now: datetime) -> tuple[float, int] | None:
    """The scope's negative share over the 30 UTC days before today (the cookbook's norm),
    and how many articles it rests on; None without any."""
    today = bucket_start(now, "day")
    history = load_trend(
        db, scope, since=today - timedelta(days=NORM_DAYS), now=today - timedelta(microseconds=1), by="day"
    )
    total = history.total
    return (total.negative_share, total.articles) if total else None


# --- market overview ---------------------------------------------------------------------


def overview(db: Database, *, now: datetime, page: int, days: int) -> dict[str, Any]:
    by: Granularity = "hour" if days <= 7 else "day"
    since = now - timedelta(days=days)
    market = load_trend(db, Scope.market(), since=since, now=now, by=by)
    with db.session() as session:
        firing = queries.alerts_page(session, firing=True, page=page, size=PAGE_SIZE)
        feeds = list_feeds(session, include_disabled=False)
        movers, movers_error = _movers(session, now)
        names = queries.company_names(
            session,
            sorted(
                {a.scope_key for a in firing.rows if a.scope_type == "ticker"} | {m["ticker"] for m in movers}
            ),
        )
    sources = []
    shown = feeds[:SOURCES_PER_PAGE]
    trends = queries.feed_trends(db, [f.id for f in shown], since=since, now=now, by="day")
    for feed in shown:
        trend = trends[feed.id]
        _, points = _series(trend)
        total = trend.total
        sources.append(
            {
                "feed": feed,
                "articles": total.articles if total else 0,
                "negative_share": total.negative_share if total else None,
                "spark": sparkline(
                    [p.negative_share if p else None for p in points],
                    [p.articles if p else 0 for p in points],
                    label=f"{feed.name or mask_secrets(feed.url)}: articles and negative share per day",
                ),
            }
        )
    return {
        "now": now,
        "days": days,
        "by": by,
        "firing": firing,
        "names": names,
        "movers": movers,
        "movers_error": movers_error,
        "market_chart": trend_chart(market, f"Market: articles and sentiment per {by}, last {days} days"),
        "market_total": market.total,
        "sources": sources,
        "more_sources": max(len(feeds) - SOURCES_PER_PAGE, 0),
    }


def _movers(session, now: datetime) -> tuple[list[dict[str, Any]], str | None]:
    try:
        query = load_cookbook()["most_negative_vs_norm"]
    except (FinSentError, KeyError) as exc:  # a build without the repository's sql/ folder
        log.warning("no ranking of companies: %s", exc)
        return [], str(exc)
    rows = query.run(session.connection(), now=now, min_articles=MOVER_MIN_ARTICLES, limit=MOVERS)
    # The cookbook ranks every company; under this heading only those more negative than
    # their norm belong (one calmer than usual is not news here).
    return [r for r in rows if r["change"] is not None and r["change"] > 0], None


# --- company -------------------------------------------------------------------------------

# Most companies a name search lists on its "did you mean" page.
NAME_MATCHES = 5


def tickers_named(db: Database, words: str) -> list[str]:
    """Mentioned tickers whose company name contains ``words`` (any case): the search box
    takes "Voltara" as well as "VLTA". One name per ticker, from its latest mentions."""
    needle = " ".join(words.split()).casefold()
    if len(needle) < 2:
        return []
    with db.session() as session:
        known = known_tickers(session.connection())
        names = queries.company_names(session, known)
    return sorted(t for t, name in names.items() if name and needle in name.casefold())[: NAME_MATCHES + 1]


# What a "not found" message quotes of what the visitor typed or posted: enough to
# recognise it, never a whole 8 KB URL echoed back.
SHOWN_CHARS = 40


def shown(value: str) -> str:
    """``value`` as a message quotes it: cut at :data:`SHOWN_CHARS`, with an ellipsis."""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def _sentence(text: str) -> str:
    """``text`` ended with a period, unless it ends with one already (a ticker such as
    "BRK." at the end): one period ends both, as in print."""
    return text if text.endswith(".") else text + "."


def company(db: Database, raw: str, *, now: datetime, by: Granularity, page: int) -> dict[str, Any] | Unknown:
    try:
        ticker = normalise_ticker(raw)
    except ValueError:
        return Unknown(
            f"'{shown(raw)}' is not a ticker (letters, digits and . - : ^ =).",
            similar_tickers(db, raw.strip().lstrip("$").upper()[:32]),
        )
    if not ticker_known(db, ticker):
        return Unknown(_sentence(f"No article has mentioned {ticker}"), similar_tickers(db, ticker))
    days = 7 if by == "hour" else 90
    since = now - timedelta(days=days)
    scope = Scope.ticker(ticker)
    trend = load_trend(db, scope, since=since, now=now, by=by)
    norm = _norm(db, scope, now)
    baseline = norm[0] if norm else None
    with db.session() as session:
        episodes = queries.scope_episodes(session, "ticker", ticker, since=trend.since)
        headlines = queries.company_headlines(session, ticker, now=now, page=page, size=PAGE_SIZE)
        name = queries.company_names(session, [ticker]).get(ticker)
        corrections, disagreement = corrections_on_page(
            session, [h.id for h in headlines.rows], ticker=ticker
        )
    bands = [
        Band(a.window_start, a.resolved_at or now, f"alert #{a.id} ({a.state}), z={a.deviation:.1f}")
        for a in episodes
    ]
    return {
        "ticker": ticker,
        "name": name,
        "now": now,
        "by": by,
        "days": days,
        "total": trend.total,
        "baseline": baseline,
        "baseline_articles": norm[1] if norm else 0,
        "chart": trend_chart(
            trend,
            f"{ticker}: articles and sentiment per {by}, last {days} days",
            baseline=baseline,
            bands=bands,
        ),
        "episodes": episodes,
        "headlines": headlines,
        "corrections": corrections,
        "correction_counts": disagreement,
    }


# --- alert ---------------------------------------------------------------------------------


def alert(db: Database, alert_id: int, *, now: datetime) -> dict[str, Any] | None:
    with db.session() as session:
        row = session.get(Alert, alert_id)
        if row is None:
            return None
        deliveries = queries.alert_deliveries(session, alert_id)
        silences = queries.scope_silences(session, row.scope_type, row.scope_key, since=row.started_at)
        headlines = _alert_headlines(session, row, deliveries)
        name = (
            queries.company_names(session, [row.scope_key]).get(row.scope_key)
            if row.scope_type == "ticker"
            else None
        )
        article_ids = listed_articles(headlines)
        corrections, disagreement = corrections_on_page(session, article_ids, ticker=correction_ticker(row))
    # The numbers it fired with (the row's own follow each evaluation since).
    fired = (row.details or {}).get("fired_with") or {}
    share, volume = fired.get("negative_share", row.negative_share), fired.get("volume", row.volume)
    events = [(row.started_at, "fired", f"{share:.0%} negative of {volume}")]
    events += [(d.evaluated_at or d.created_at, kind, f"email #{d.id} {d.status}") for d, kind in deliveries]
    events += [
        (
            s.starts_at,
            "silenced",
            f"until {s.ends_at:%Y-%m-%d %H:%M} UTC" + (f": {s.reason}" if s.reason else ""),
        )
        for s in silences
    ]
    if row.resolved_at is not None:
        events.append((row.resolved_at, "resolved", ""))
    events.sort(key=lambda e: e[0])
    active = [s for s in silences if s.starts_at <= now < s.ends_at]
    details = row.details or {}
    return {
        "alert": row,
        "name": name,
        "now": now,
        "window_minutes": int((row.window_end - row.window_start).total_seconds() // 60),
        "details": details,
        "fired_with": details.get("fired_with") or {},
        "emailed": _emailed_evidence(deliveries, alert_id),
        "headlines": headlines,
        "events": events,
        "deliveries": deliveries,
        "active_silences": active,
        "durations": list(DURATIONS),
        "corrections": corrections,
        "correction_counts": disagreement,
        "correction_ticker": correction_ticker(row),
        # What its correction form takes, so a correction made on an older copy of the page
        # (before a repeat email) is announced too.
        "article_ids": sorted(correctable_articles(headlines, deliveries, alert_id)),
    }


def _alert_headlines(session, row: Alert, deliveries: list) -> list[dict[str, Any]]:
    """The headlines an alert's page lists: those its latest email carried, else the top
    negative ones of its window. Both give times as ISO text (a payload is JSON); the page
    shows datetimes."""
    headlines = _carried_headlines(deliveries, row.id)
    if headlines is None:
        counted = row.details or {}  # the model and the firing tickers it was judged without
        headlines = top_headlines(
            session,
            (row.scope_type, row.scope_key),
            now=row.window_end,
            window=row.window_end - row.window_start,
            limit=HEADLINES_SHOWN,
            model_version=counted.get("model_version"),
            exclude_tickers=counted.get("excluded_tickers") or (),
        )
    return [{**h, "published_at": datetime.fromisoformat(h["published_at"])} for h in headlines]


def listed_articles(headlines: list[dict[str, Any]]) -> list[int]:
    """The articles of an alert page's headlines that carry a correction form (a payload
    from before article ids were sent has none): the only ones its corrections are for."""
    return [h["article_id"] for h in headlines if h.get("article_id")]


def correctable_articles(headlines: list[dict[str, Any]], deliveries: list, alert_id: int) -> set[int]:
    """What an alert page's correction form takes: the articles of the headlines it lists,
    and of any headline a message about the alert carried (a page loaded before a repeat
    email, which lists new headlines, still takes the correction it shows)."""
    carried = {
        h.get("article_id")
        for _, _, item in _items_about(deliveries, alert_id)
        for h in item.get("headlines") or ()
    }
    return set(listed_articles(headlines)) | {a for a in carried if a}


def _items_about(deliveries: Iterable, alert_id: int) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    """(delivery, kind, payload item) for each item about the alert, in ``deliveries``' order
    (alert_deliveries: oldest first; reversed: latest first)."""
    for delivery, kind in deliveries:
        for item in (delivery.payload or {}).get("items", []):
            if item.get("alert_id") == alert_id:
                yield delivery, kind, item


def _emailed_evidence(deliveries: list, alert_id: int) -> dict[str, Any] | None:
    """The numbers the latest message about the alert carried (its frozen payload: what the
    analyst read), with the delivery's id, kind and status; None if none carried it. The alert's
    row moves on with each evaluation while it fires."""
    for delivery, kind, item in _items_about(reversed(deliveries), alert_id):
        if "window_start" in item:
            return {
                "delivery": delivery.id,
                "kind": kind,
                "status": delivery.status,
                "window_start": datetime.fromisoformat(item["window_start"]),
                "window_end": datetime.fromisoformat(item["window_end"]),
                "negative_share": item["negative_share"],
                "volume": item["volume"],
                "baseline_share": item["baseline_share"],
                "deviation": item["deviation"],
            }
    return None


def _carried_headlines(deliveries: list, alert_id: int) -> list[dict[str, Any]] | None:
    """The headlines of the latest email that carried the alert with some (what was read)."""
    for _, _, item in _items_about(reversed(deliveries), alert_id):
        if item.get("headlines"):
            return list(item["headlines"])
    return None


def silence(db: Database, alert_id: int, *, duration: str, reason: str, now: datetime) -> SilenceSet | None:
    """Silence the alert's scope; None if there is no such alert, ValueError for a bad length."""
    if alert_id <= 0:
        return None
    with db.transaction() as session:
        row = session.get(Alert, alert_id)
        if row is None:
            return None
        return add_silence_for(
            session, row.scope_type, row.scope_key, duration=duration, reason=reason, now=now, via="web"
        )


def correction_ticker(alert: Alert) -> str | None:
    """The company an alert page's corrections are for: its ticker, else the whole article."""
    return alert.scope_key if alert.scope_type == "ticker" else None


# --- corrections ---------------------------------------------------------------------------


def confirmed(
    db: Database,
    *,
    correction: int | None = None,
    ticker: str | None = None,
    articles: Collection[int] | None = None,
    silence: int | None = None,
    alert: int | None = None,
) -> int | None:
    """The id a page's "saved" notice names, if that row exists and belongs to the page (a
    correction for its company, a silence of its alert's scope), else None: a link with a
    made-up ``?corrected=`` or ``?silenced=`` announces nothing.

    ``articles``: the page lists only these headlines (an alert's page); the correction must
    be of one of them and for exactly ``ticker`` (None: the whole article, what a source's
    or the market's alert page makes)."""
    with db.session() as session:
        if correction:
            row = session.get(Correction, correction)
            if row is not None and _on_page(row, ticker, articles):
                return correction
        if silence and alert:
            muted, scoped = session.get(AlertSilence, silence), session.get(Alert, alert)
            if (
                muted is not None
                and scoped is not None
                and (muted.scope_type, muted.scope_key) == (scoped.scope_type, scoped.scope_key)
            ):
                return silence
    return None


def _on_page(row: Correction, ticker: str | None, articles: Collection[int] | None) -> bool:
    if articles is not None:
        return row.article_id in articles and row.ticker == ticker
    return ticker is None or row.ticker == ticker


def correct(
    db: Database, article_id: int, *, ticker: str | None, label: str, who: str, now: datetime
) -> Recorded | None:
    """Store a correction made on a page; None if there is no such article, ValueError for
    a bad label, person or ticker."""
    if article_id <= 0:
        return None
    with db.transaction() as session:
        return record(session, article_id, label=label, who=who, ticker=ticker, now=now)


def correct_from_alert(
    db: Database, alert_id: int, article_id: int, *, label: str, who: str, now: datetime
) -> Recorded | None:
    """A correction made on an alert's page: for the alert's company (or the whole article
    when the alert is a source's or the market's). None if the alert is unknown or the
    article is not one of the headlines its page lists (the form is only on those)."""
    if alert_id <= 0 or article_id <= 0:
        return None
    with db.transaction() as session:
        # The same list the page shows, so a post cannot label an article the alert is not
        # about (another company's, or one outside its window) as if judged from this page.
        scope = _alert_scope(session, alert_id)
        if scope is None or article_id not in scope[1]:
            return None
        return record(session, article_id, label=label, who=who, ticker=scope[0], now=now)


def _alert_scope(session: Any, alert_id: int) -> tuple[str | None, set[int]] | None:
    row = session.get(Alert, alert_id)
    if row is None:
        return None
    deliveries = queries.alert_deliveries(session, alert_id)
    headlines = _alert_headlines(session, row, deliveries)
    return correction_ticker(row), correctable_articles(headlines, deliveries, alert_id)


def alert_articles(db: Database, alert_id: int) -> tuple[str | None, set[int]] | None:
    """What an alert's page takes corrections for: its company (None: the whole article)
    and the headlines it lists. None when there is no such alert."""
    with db.session() as session:
        return _alert_scope(session, alert_id)


def own(db: Database, article_ids: Collection[int], *, ticker: str | None, who: str) -> dict[int, Any]:
    """The corrections ``who`` made of these headlines for ``ticker`` (None: the whole
    article), by article: each gets a "withdraw" button on the page."""
    with db.session() as session:
        return own_corrections(session, article_ids, ticker=ticker, who=who)


def withdraw(
    db: Database,
    correction_id: int,
    *,
    who: str,
    ticker: str | None,
    articles: Collection[int] | None = None,
) -> CorrectionRow | None:
    """Withdraw ``who``'s correction ``correction_id`` from the page it is shown on (for
    ``ticker``; of one of ``articles`` when given, as on an alert's page). None when there
    is no such correction on that page; ValueError when someone else made it."""
    if correction_id <= 0:
        return None
    with db.transaction() as session:
        row = session.get(Correction, correction_id)
        # On this page and for exactly its company: a company page shows whole-article
        # corrections too (_on_page), but withdraws only what its own form made.
        if row is None or row.ticker != ticker or not _on_page(row, ticker, articles):
            return None
        return withdraw_own(session, correction_id, who=who)


# --- feeds ---------------------------------------------------------------------------------

INTAKE_DAYS = 7


def last_utc_days(now: datetime, days: int) -> datetime:
    """The start of the first of the last ``days`` UTC days, today's included: 1 is today.
    (``now - days`` would reach into one more day, which the daily rollups count whole.)"""
    return bucket_start(now, "day") - timedelta(days=days - 1)


def companies(db: Database, *, now: datetime, days: int, page: int) -> dict[str, Any]:
    """Every company with news in the last ``days`` UTC days, busiest first, with its name."""
    with db.session() as session:
        listed = queries.companies_page(
            session, since=last_utc_days(now, days), now=now, page=page, size=PAGE_SIZE
        )
        names = queries.company_names(session, [r.ticker for r in listed.rows])
    return {"now": now, "days": days, "page": listed, "names": names}


def feeds(db: Database, *, now: datetime, page: int) -> dict[str, Any]:
    with db.session() as session:
        every = list_feeds(session, include_disabled=True)
        shown = every[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        health = queries.feed_health(
            session, [f.id for f in shown], since=now - timedelta(days=INTAKE_DAYS), now=now
        )
    rows = []
    for f in shown:
        h = health.get(f.id)
        rows.append(
            {
                "feed": f,
                "health": h,
                "per_day": (h.new_articles / INTAKE_DAYS) if h else 0.0,
                "due_now": f.next_fetch_at is None or f.next_fetch_at <= now,
            }
        )
    return {
        "now": now,
        "rows": rows,
        "page": queries.Page(rows, page, len(every) > page * PAGE_SIZE),
        "total": len(every),
        "intake_days": INTAKE_DAYS,
    }
