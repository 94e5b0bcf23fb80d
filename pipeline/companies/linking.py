"""Ticker linking: which companies an article is about.

Three signals, strongest first: exchange prefixes (``NYSE: ACME``, ``(NASDAQ:XYZ)``),
cashtags (``$ACME``), then the watchlist's names, aliases and (bare) tickers matched on
word boundaries. The guards exist because each signal has known false positives.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pipeline.companies.watchlist import Watchlist
from pipeline.ingest.normalise import linkable_text

if TYPE_CHECKING:
    from pipeline.db.engine import Database

log = logging.getLogger(__name__)

EXCHANGE_RE = re.compile(
    r"(?<![\w])(?i:NYSE\s+American|NYSE\s+Arca|NYSE|NASDAQ(?:GS|GM|CM)?|AMEX|OTCQX|OTCQB|OTC|TSXV?|"
    r"LSE|CBOE|BATS)\s*:\s*([A-Z]{1,5}(?:[.\-][A-Z])?)(?![\w])"
)
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Z]{1,6}(?:\.[A-Z])?)(?![\w])")
SHARE_CONTEXT = re.compile(r"(?i)\b(?:share|shared|tweet|retweet|follow|like|post)\b|\b(?:on|via)\s*$")
# Share buttons and "follow us" footers put these cashtags in text that is not about them.
SOCIAL_TICKERS = frozenset({"FB", "META", "TWTR", "PINS", "SNAP", "LNKD", "RDDT"})
# Written with a $ in front, these are money, macro or slang far more often than a ticker.
NOT_CASHTAGS = frozenset(
    {
        "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "CNY", "HKD", "SGD", "US", "CA", "AU", "HK", "NZ",
        "CEO", "CFO", "IPO", "ETF", "EPS", "GDP", "CPI", "PPI", "FED", "SEC", "AI", "IT", "A", "I", "B",
        "M", "K", "T", "BN", "MM", "MN", "TN", "Q", "FY", "YOY", "EBITDA", "ATH", "DD", "YOLO",
    }
)  # fmt: skip
# Bare tickers that are everyday words (or pronouns, units) are only trusted with a $ or
# an exchange prefix.
COMMON_WORD_TICKERS = frozenset(
    {
        "A", "ALL", "AN", "ARE", "AS", "AT", "BE", "BIG", "BY", "CAN", "CAR", "CAT", "CEO", "DO", "EAT",
        "FAST", "FOR", "FUN", "GO", "GOOD", "HAS", "HE", "HI", "I", "IT", "KEY", "LOW", "MAN", "NEW",
        "NOW", "OLD", "ON", "ONE", "OR", "OUT", "PLAY", "REAL", "RUN", "SEE", "SO", "TV", "TWO", "UP",
        "US", "WELL", "YOU", "AI", "EV", "IPO", "GDP", "CPI", "SEC", "FED", "USA", "UK", "EU", "NYSE",
    }
)  # fmt: skip
# Single-word names that are also everyday words; trusted only mid-sentence, where their
# capital letter means a proper noun.
COMMON_WORDS = frozenset(
    {
        "target", "apple", "amazon", "shell", "visa", "square", "block", "oracle", "gap", "ford",
        "general", "national", "american", "first", "united", "alphabet", "meta", "snap", "match",
        "coach", "progressive", "sunrise", "summit", "pinnacle", "harbor", "crest", "key", "citizens",
    }
)  # fmt: skip
SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(\-–—]\s*|\n\s*)$")
MOSTLY_UPPER_MIN_LETTERS = 12

RANK = {"exchange": 0, "cashtag": 1, "name": 2, "alias": 3, "ticker": 4}


@dataclass(frozen=True)
class EntityMatch:
    ticker: str
    company: str | None
    matched_by: str  # exchange | cashtag | name | alias | ticker


class TickerLinker:
    """Finds tickers in text. Build once per run (the name pattern is compiled here)."""

    def __init__(self, watchlist: Watchlist | None = None):
        self.watchlist = watchlist or Watchlist.empty()
        names: dict[str, tuple[str, str]] = {}
        for company in self.watchlist.companies:
            for text, how in company.names():
                # Headlines are sometimes written in capitals; "Voltara" is also "VOLTARA".
                for variant in (text, text.upper()):
                    names.setdefault(variant, (company.ticker, how))
            if len(company.ticker) >= 2 and company.ticker not in COMMON_WORD_TICKERS:
                names.setdefault(company.ticker, (company.ticker, "ticker"))
        self._names = names
        self._name_re = (
            re.compile(
                r"(?<![\w$])(?:"
                + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                + r")(?![\w])"
            )
            if names
            else None
        )

    def link(self, text: str) -> list[EntityMatch]:
        """One match per ticker, the strongest signal kept, in order of first appearance."""
        found: dict[str, EntityMatch] = {}

        def keep(ticker: str, how: str) -> None:
            company = self.watchlist.company(ticker)
            match = EntityMatch(ticker, company.name if company else None, how)
            old = found.get(ticker)
            if old is None or RANK[how] < RANK[old.matched_by]:
                found[ticker] = match

        if not text:
            return []
        if ":" in text:
            for m in EXCHANGE_RE.finditer(text):
                keep(m.group(1).replace("-", "."), "exchange")
        if "$" in text:
            for m in CASHTAG_RE.finditer(text):
                ticker = m.group(1)
                if ticker in NOT_CASHTAGS and ticker not in self.watchlist:
                    continue
                if ticker in SOCIAL_TICKERS and self._in_share_context(text, m.start(), m.end()):
                    continue
                keep(ticker, "cashtag")
        if self._name_re is not None:
            shouting: bool | None = None
            for m in self._name_re.finditer(text):
                ticker, how = self._names[m.group(0)]
                if how == "ticker":
                    if shouting is None:
                        shouting = _mostly_upper(text)
                    if shouting:
                        continue  # in an all-caps headline every word looks like a ticker
                if m.group(0).lower() in COMMON_WORDS and SENTENCE_START.search(text, 0, m.start()):
                    continue
                keep(ticker, how)
        return list(found.values())

    @staticmethod
    def _in_share_context(text: str, start: int, end: int) -> bool:
        before = text[max(0, start - 40) : start]
        after = text[end : end + 40]
        return bool(SHARE_CONTEXT.search(before) or SHARE_CONTEXT.search(after))


def _mostly_upper(text: str) -> bool:
    """Whether the headline (the first line) is written in capitals."""
    head = text.split("\n", 1)[0][:300]
    letters = sum(map(str.isalpha, head))
    if letters < MOSTLY_UPPER_MIN_LETTERS:
        return False
    return sum(map(str.isupper, head)) > 0.7 * letters


# --- re-linking stored articles after a watchlist edit -----------------------------------

RELINK_BATCH = 1000

# A page of articles in id order (keyset: no OFFSET, each page is an index range). FOR
# SHARE holds off an ingest edit of the same articles until the page is committed: it
# re-links from the new text itself, and must not be overwritten with links of the old.
RELINK_PAGE = """
    SELECT id, title, summary, published_at FROM articles
    WHERE id > :after {since}
    ORDER BY id
    LIMIT :n
    FOR SHARE
"""
RELINK_CURRENT = """
    SELECT article_id, ticker, company, matched_by FROM article_entities
    WHERE article_id = ANY(CAST(:ids AS bigint[]))
"""
RELINK_DELETE = """
    DELETE FROM article_entities e
    USING unnest(CAST(:ids AS bigint[]), CAST(:tickers AS text[])) AS k (article_id, ticker)
    WHERE e.article_id = k.article_id AND e.ticker = k.ticker
"""
RELINK_INSERT = """
    INSERT INTO article_entities (article_id, ticker, company, matched_by, published_at)
    SELECT * FROM unnest(
        CAST(:ids AS bigint[]), CAST(:tickers AS text[]), CAST(:companies AS text[]),
        CAST(:matched_by AS text[]), CAST(:published_at AS timestamptz[])
    )
"""
RELINK_UPDATE = """
    UPDATE article_entities e SET company = k.company, matched_by = k.matched_by
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:tickers AS text[]), CAST(:companies AS text[]),
        CAST(:matched_by AS text[])
    ) AS k (article_id, ticker, company, matched_by)
    WHERE e.article_id = k.article_id AND e.ticker = k.ticker
"""


def _link_columns(
    keys: list[tuple[int, str]], wanted: dict[tuple[int, str], tuple[str | None, str]]
) -> dict[str, list]:
    """The unnest() arrays of RELINK_INSERT / RELINK_UPDATE for these (article, ticker) links."""
    return {
        "ids": [a for a, _ in keys],
        "tickers": [t for _, t in keys],
        "companies": [wanted[k][0] for k in keys],
        "matched_by": [wanted[k][1] for k in keys],
    }


@dataclass
class RelinkReport:
    articles: int = 0  # articles read
    changed: int = 0  # articles whose links changed
    added: int = 0  # links added (a ticker the article is now linked to)
    removed: int = 0  # links removed
    updated: int = 0  # same ticker, another company name or signal

    def summary(self) -> str:
        return (
            f"relink: {self.articles} articles read, {self.changed} changed: {self.added} links added, "
            f"{self.removed} removed, {self.updated} updated"
        )


def relink_articles(
    db: Database,
    watchlist: Watchlist,
    *,
    since: datetime | None = None,
    batch_size: int = RELINK_BATCH,
    dry_run: bool = False,
) -> RelinkReport:
    """Re-link stored articles (those published since ``since``, or all) to tickers with
    ``watchlist``, as ingestion would link them today. Idempotent: a second run changes
    nothing.

    Works page by page, one transaction each, so memory and locks stay bounded whatever
    the size of the table, and an interrupted run keeps what it did (run it again to
    finish). Only differences are written; the trends triggers queue the hours of those
    articles, so ``refresh_rollups`` afterwards (or the next scoring run) brings the
    ticker rollups up to date. ``dry_run`` counts the changes and writes nothing.
    """
    from sqlalchemy import text

    if since is not None and since.tzinfo is None:
        raise ValueError(f"since={since.isoformat()} has no timezone: pass an aware datetime")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    linker = TickerLinker(watchlist)
    page = text(RELINK_PAGE.format(since="AND published_at >= :since" if since is not None else ""))
    report = RelinkReport()
    after = 0
    while True:
        with db.engine.connect() as conn, conn.begin() as tx:
            params = {"after": after, "n": batch_size} | ({"since": since} if since is not None else {})
            rows = conn.execute(page, params).all()
            if not rows:
                break
            after = rows[-1].id
            ids = [r.id for r in rows]
            current = {
                (r.article_id, r.ticker): (r.company, r.matched_by)
                for r in conn.execute(text(RELINK_CURRENT), {"ids": ids})
            }
            wanted: dict[tuple[int, str], tuple[str | None, str]] = {}
            published = {r.id: r.published_at for r in rows}
            for r in rows:
                for match in linker.link(linkable_text(r.title, r.summary)):
                    wanted[(r.id, match.ticker)] = (match.company, match.matched_by)
            added = [key for key in wanted if key not in current]
            removed = [key for key in current if key not in wanted]
            updated = [key for key, value in wanted.items() if key in current and current[key] != value]
            report.articles += len(rows)
            report.added += len(added)
            report.removed += len(removed)
            report.updated += len(updated)
            report.changed += len({article_id for article_id, _ in (*added, *removed, *updated)})
            if dry_run:
                tx.rollback()
                continue
            # Nothing is written for an unchanged page: no dead rows, no dirty hours.
            if removed:
                conn.execute(
                    text(RELINK_DELETE),
                    {"ids": [a for a, _ in removed], "tickers": [t for _, t in removed]},
                )
            if added:
                published_at = {"published_at": [published[a] for a, _ in added]}
                conn.execute(text(RELINK_INSERT), _link_columns(added, wanted) | published_at)
            if updated:
                conn.execute(text(RELINK_UPDATE), _link_columns(updated, wanted))
        log.debug("relink: up to article #%s, %s", after, report.summary())
    log.info("%s%s", report.summary(), " (dry run: nothing written)" if dry_run else "")
    return report
