"""Storing and reading corrections: one row per (article, company or none, person).

A correction names the score it corrects (the article's latest: its model version and
label), read when it is made, so a later re-scoring does not change what was corrected.
A newer correction by the same person for the same article and company replaces theirs
(an upsert on the partial unique indexes of migration 0011); other people's stay.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from pipeline.db.models import Article, ArticleEntity, Correction, EntityScore, SentimentScore
from pipeline.score.labels import LABELS
from pipeline.trends.queries import normalise_ticker

log = logging.getLogger(__name__)

MAX_WHO = 200  # an email address or a name; longer is not a person


@dataclass(frozen=True)
class Recorded:
    correction_id: int
    article_id: int
    ticker: str | None
    label: str
    model_version: str | None
    model_label: str | None


@dataclass(frozen=True)
class CorrectionRow:
    """A correction with the headline it is about (what list and export show)."""

    id: int
    article_id: int
    ticker: str | None
    label: str
    model_version: str | None
    model_label: str | None
    corrected_by: str
    corrected_at: datetime
    title: str
    url: str | None
    # The company's first mention as written in the article ("Ford", "BofA"), the target a
    # company's correction trains; None for a whole-article correction (or a link made
    # before mentions were stored).
    mention: str | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "article_id": self.article_id,
            "ticker": self.ticker,
            "label": self.label,
            "model_version": self.model_version,
            "model_label": self.model_label,
            "corrected_by": self.corrected_by,
            "corrected_at": self.corrected_at.isoformat(),
            "title": self.title,
            "url": self.url,
            "mention": self.mention,
        }


# Characters that show nothing though Unicode calls them letters, symbols or marks (Hangul
# fillers, the blank Braille pattern, the combining grapheme joiner, Mongolian free variation
# selectors): "ann" followed by one would be a second person who looks the same.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u180b\u180c\u180d\u180f")


def _variation_selector(char: str) -> bool:
    return 0xFE00 <= ord(char) <= 0xFE0F or 0xE0100 <= ord(char) <= 0xE01EF


def _kept(char: str) -> bool:
    return char.isspace() or not (
        unicodedata.category(char) in ("Cf", "Cc") or char in _BLANK_GLYPHS or _variation_selector(char)
    )


def _visible(char: str) -> bool:
    # A letter, digit, punctuation or symbol; not a mark (it only decorates another
    # character), a space, a control or a format character.
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANK_GLYPHS


def clean_who(raw: str | None) -> str:
    """The person, as given, in Unicode's compatibility form (NFKC: "ａｎｎ" and a decomposed
    "é" are the ann and é typed plainly), with spaces collapsed and characters that show
    nothing removed (a zero-width space or a variation selector would make "ann" a second
    person; a right-to-left override shows the name reversed). ValueError when no visible
    character is left, or it is too long."""
    kept = "".join(c for c in unicodedata.normalize("NFKC", raw or "") if _kept(c))
    who = " ".join(kept.split())
    if not any(_visible(c) for c in who):
        raise ValueError(
            "say who makes the correction (a name or an email address): 'who' has no visible character"
        )
    if len(who) > MAX_WHO:
        raise ValueError(f"'who' is longer than {MAX_WHO} characters")
    return who


def clean_label(raw: str | None) -> str:
    label = (raw or "").strip().lower()
    if label not in LABELS:
        raise ValueError(f"label {raw!r} is not one of {', '.join(LABELS)}")
    return label


def record(
    session: Session,
    article_id: int,
    *,
    label: str,
    who: str,
    ticker: str | None = None,
    now: datetime,
) -> Recorded | None:
    """Store ``who``'s correction of the article (for ``ticker``, or the whole article).

    Returns None when there is no such article; ValueError names a bad label, person or
    ticker. The caller commits.
    """
    label, who = clean_label(label), clean_who(who)
    ticker = normalise_ticker(ticker) if ticker else None
    if session.get(Article, article_id) is None:
        return None
    if ticker and session.get(ArticleEntity, (article_id, ticker)) is None:
        # A label "for" a company the article is not linked to would become a training row
        # about text that never names it.
        raise ValueError(f"article {article_id} is not about {ticker}: correct it for a company it names")
    latest = None
    if ticker:
        # What the model said for that company (its own score), as the company page shows it;
        # the article's label stands in only where the company has none.
        latest = session.execute(
            select(EntityScore.model_version, EntityScore.label)
            .where(EntityScore.article_id == article_id, EntityScore.ticker == ticker)
            .order_by(EntityScore.scored_at.desc(), EntityScore.id.desc())
            .limit(1)
        ).first()
    latest = (
        latest
        or session.execute(
            select(SentimentScore.model_version, SentimentScore.label)
            .where(SentimentScore.article_id == article_id)
            .order_by(SentimentScore.scored_at.desc(), SentimentScore.id.desc())
            .limit(1)
        ).first()
    )
    model_version, model_label = (latest.model_version, latest.label) if latest else (None, None)
    values = {
        "article_id": article_id,
        "ticker": ticker,
        "label": label,
        "model_version": model_version,
        "model_label": model_label,
        "corrected_by": who,
        "corrected_at": now,
    }
    stmt = insert(Correction).values(**values)
    # The unique indexes hold a person in any case (migration 0017): "ANN" replaces ann's
    # correction, which keeps the spelling it was first made with.
    person = func.lower(Correction.corrected_by)
    keys = [Correction.article_id, Correction.ticker, person] if ticker else [Correction.article_id, person]
    where = text("ticker IS NOT NULL") if ticker else text("ticker IS NULL")
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        index_where=where,
        set_={k: stmt.excluded[k] for k in ("label", "model_version", "model_label", "corrected_at")},
    )
    correction_id = session.execute(stmt.returning(Correction.id)).scalar_one()
    log.info(
        "correction #%s: article %s%s is %s (model %s said %s)",
        correction_id,
        article_id,
        f" for {ticker}" if ticker else "",
        label,
        model_version,
        model_label,
    )
    return Recorded(correction_id, article_id, ticker, label, model_version, model_label)


def remove_corrections(session: Session, ids: Iterable[int]) -> list[CorrectionRow]:
    """Withdraw the corrections ``ids`` (a mistaken label, a test): deleted, so no later
    training reads them. All or none: ValueError names an id that is not stored (and nothing
    is removed). Returns what was removed. The caller commits."""
    wanted = list(dict.fromkeys(ids))
    found = {row.id: row for row in list_corrections(session, ids=wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValueError(
            f"no correction #{', #'.join(map(str, missing))}: nothing removed "
            "(`finsent feedback list` shows the ids)"
        )
    session.execute(delete(Correction).where(Correction.id.in_(wanted)))
    for row in found.values():
        log.info(
            "correction #%s removed: article %s%s was %s by %s",
            row.id,
            row.article_id,
            f" for {row.ticker}" if row.ticker else "",
            row.label,
            row.corrected_by,
        )
    return [found[i] for i in wanted]


def own_corrections(
    session: Session, article_ids: Iterable[int], *, ticker: str | None, who: str
) -> dict[int, Correction]:
    """``who``'s own corrections of these articles for ``ticker`` (None: of the whole
    article), by article: what a page offers them to withdraw. A person is matched in any
    case, as the unique indexes match them; an empty or invalid ``who`` has none."""
    try:
        who = clean_who(who)
    except ValueError:
        return {}
    ids = sorted(set(article_ids))
    if not ids:
        return {}
    scope = Correction.ticker == ticker if ticker else Correction.ticker.is_(None)
    query = select(Correction).where(
        Correction.article_id.in_(ids), scope, func.lower(Correction.corrected_by) == func.lower(literal(who))
    )
    return {row.article_id: row for row in session.scalars(query)}


def withdraw_own(session: Session, correction_id: int, *, who: str) -> CorrectionRow | None:
    """Withdraw correction ``correction_id`` on behalf of its author ``who`` (the web page's
    "withdraw" button): None when it is not stored; ValueError when someone else made it,
    naming the command that withdraws any. The caller commits."""
    who = clean_who(who)
    row = session.get(Correction, correction_id)
    if row is None:
        return None
    # PostgreSQL's lower(), as the page's list and the unique indexes compare people.
    if not session.scalar(select(func.lower(literal(row.corrected_by)) == func.lower(literal(who)))):
        raise ValueError(
            f"correction #{correction_id} was made by {row.corrected_by}, not {who}: only its author "
            f"withdraws it here (`finsent feedback remove {correction_id}` withdraws any)"
        )
    return remove_corrections(session, [correction_id])[0]


def list_corrections(
    session: Session,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    ids: Iterable[int] | None = None,
) -> list[CorrectionRow]:
    """Corrections made at or after ``since`` (all when None), only ``ids`` when given,
    oldest first."""
    query = (
        select(Correction, Article.title, Article.url, ArticleEntity.mention)
        .join(Article, Article.id == Correction.article_id)
        .outerjoin(
            ArticleEntity,
            (ArticleEntity.article_id == Correction.article_id) & (ArticleEntity.ticker == Correction.ticker),
        )
        .order_by(Correction.corrected_at, Correction.id)
    )
    if since is not None:
        query = query.where(Correction.corrected_at >= since)
    if ids is not None:
        query = query.where(Correction.id.in_(list(ids)))
    if limit is not None:
        query = query.limit(limit)
    return [
        CorrectionRow(
            c.id,
            c.article_id,
            c.ticker,
            c.label,
            c.model_version,
            c.model_label,
            c.corrected_by,
            c.corrected_at,
            title,
            url,
            mention,
        )
        for c, title, url, mention in session.execute(query).all()
    ]


def corrections_on_page(
    session: Session, article_ids: Iterable[int], *, ticker: str | None
) -> tuple[dict[int, Correction], dict[int, dict[str, int]]]:
    """The corrections that apply on a page (for ``ticker`` or for the whole article;
    ``ticker`` None: whole-article corrections only), from one query: each article's latest,
    and, for the articles corrected more than once, how many gave each label (most first).
    A page that showed only the latest would hide that analysts disagree (training takes the
    majority, see pipeline/sentiment/data.py)."""
    ids = sorted(set(article_ids))
    if not ids:
        return {}, {}
    query = select(Correction).where(Correction.article_id.in_(ids))
    if ticker is None:
        query = query.where(Correction.ticker.is_(None))
    else:
        query = query.where((Correction.ticker == ticker) | Correction.ticker.is_(None))
    latest: dict[int, Correction] = {}
    counts: dict[int, dict[str, int]] = {}
    for row in session.scalars(query.order_by(Correction.corrected_at, Correction.id)):
        latest[row.article_id] = row  # ordered oldest first: the last one wins
        labels = counts.setdefault(row.article_id, {})
        labels[row.label] = labels.get(row.label, 0) + 1
    several = {
        a: dict(sorted(c.items(), key=lambda kv: -kv[1])) for a, c in counts.items() if sum(c.values()) > 1
    }
    return latest, several
