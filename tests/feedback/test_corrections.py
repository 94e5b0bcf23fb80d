"""Recording corrections: the score corrected, one per person, kept through re-scoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from trends_helpers import add_article, add_feed, add_score

from pipeline.db.engine import Database
from pipeline.db.models import ArticleEntity, Correction, SentimentScore
from pipeline.feedback import corrections_on_page, list_corrections, record
from pipeline.feedback.corrections import clean_who

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def article(db: Database) -> int:
    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        article_id = add_article(s, feed, "a1", "Acme recalls widgets", NOW, tickers=("ACME", "BETA"))
        add_score(s, article_id, "positive", model="m1", scored_at=NOW)
    return article_id


def test_a_correction_names_the_score_it_corrects(db: Database, article: int) -> None:
    with db.transaction() as s:
        done = record(s, article, label="Negative", who="  ann@example.com ", ticker="$acme", now=NOW)
    assert done is not None
    assert (done.ticker, done.label, done.model_version, done.model_label) == (
        "ACME",
        "negative",
        "m1",
        "positive",
    )
    with db.session() as s:
        (row,) = list_corrections(s)
    assert (row.corrected_by, row.title, row.corrected_at) == ("ann@example.com", "Acme recalls widgets", NOW)


def test_a_company_correction_names_that_companys_own_score(db: Database, article: int) -> None:
    # "positive for BETA" on a headline the model already scores positive for BETA (its own
    # score) agrees with the model, whatever the whole article's label.
    with db.transaction() as s:
        add_score(s, article, "negative", model="m2", scored_at=NOW + timedelta(hours=1))  # the article
        add_score(s, article, "positive", ticker="BETA", model="m2", scored_at=NOW + timedelta(hours=1))
    with db.transaction() as s:
        beta = record(s, article, label="positive", who="ann", ticker="BETA", now=NOW)
        acme = record(s, article, label="positive", who="ann", ticker="ACME", now=NOW)
    assert beta is not None and (beta.model_version, beta.model_label) == ("m2", "positive")
    # no score of its own: the article's stands in, as on the company page
    assert acme is not None and (acme.model_version, acme.model_label) == ("m2", "negative")


def test_a_correction_for_a_company_the_article_is_not_about_is_refused(db: Database, article: int) -> None:
    with pytest.raises(ValueError, match=f"article {article} is not about ZZZZ"), db.transaction() as s:
        record(s, article, label="negative", who="ann", ticker="ZZZZ", now=NOW)
    with db.session() as s:
        assert list_corrections(s) == []


def test_a_newer_correction_by_the_same_person_replaces_theirs(db: Database, article: int) -> None:
    later = NOW + timedelta(hours=1)
    with db.transaction() as s:
        record(s, article, label="negative", who="ann", ticker="ACME", now=NOW)
        record(s, article, label="neutral", who="ann", now=NOW)  # the whole article: another row
        record(s, article, label="positive", who="bob", ticker="ACME", now=NOW)
        add_score(s, article, "negative", model="m2", scored_at=NOW + timedelta(minutes=30))
        record(s, article, label="neutral", who=" Ann ", ticker="ACME", now=later)  # any case
        record(s, article, label="negative", who="ANN", now=later)
    with db.session() as s:
        rows = {(r.corrected_by, r.ticker): r for r in list_corrections(s)}
    assert len(rows) == 3
    ann = rows[("ann", "ACME")]
    assert (ann.label, ann.model_version, ann.model_label, ann.corrected_at) == (
        "neutral",
        "m2",
        "negative",
        later,
    )
    assert rows[("ann", None)].label == "negative"
    assert rows[("bob", "ACME")].label == "positive"


def test_rescoring_and_relinking_keep_corrections(db: Database, article: int) -> None:
    with db.transaction() as s:
        record(s, article, label="negative", who="ann", ticker="ACME", now=NOW)
    with db.transaction() as s:
        s.execute(delete(SentimentScore))
        s.execute(delete(ArticleEntity))
        add_score(s, article, "neutral", model="m3", scored_at=NOW)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Correction)) == 1


def test_bad_input_is_refused_and_an_unknown_article_is_none(db: Database, article: int) -> None:
    with db.transaction() as s:
        with pytest.raises(ValueError, match="bearish"):
            record(s, article, label="bearish", who="ann", now=NOW)
        with pytest.raises(ValueError, match="who"):
            record(s, article, label="negative", who="   ", now=NOW)
        with pytest.raises(ValueError, match="longer"):
            record(s, article, label="negative", who="x" * 201, now=NOW)
        with pytest.raises(ValueError, match="not a ticker"):
            record(s, article, label="negative", who="ann", ticker="<b>", now=NOW)
        assert record(s, 999_999, label="negative", who="ann", now=NOW) is None


@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\u200d\ufeff", "\u202e\u2066", "\u3164", "\x00 \x07"])
def test_a_who_without_a_visible_character_is_refused(invisible: str) -> None:
    with pytest.raises(ValueError, match="'who' has no visible character"):
        clean_who(invisible)


def test_format_characters_are_taken_out_of_who() -> None:
    # Reversed on the page, or a second "ann" that looks like the first: neither is stored.
    assert clean_who("\u202eann@example.com") == "ann@example.com"
    assert clean_who("a\u200bnn\u200d \t Lee") == "ann Lee"
    assert clean_who("Zoë 李") == "Zoë 李"
    # Invisible letters, marks and selectors, and look-alike forms, are the plain name.
    for same in ("ann\u034f", "ann\ufe0f", "ann\u3164", "an\U000e0100n", "ａｎｎ"):
        assert clean_who(same) == "ann", repr(same)
    assert clean_who("Zoe\u0308") == "Zoë"  # decomposed, composed


def test_an_unscored_article_can_be_corrected(db: Database) -> None:
    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        article = add_article(s, feed, "a2", "Acme names a CFO", NOW, tickers=("ACME",))
        done = record(s, article, label="neutral", who="ann", now=NOW)
    assert done is not None and (done.model_version, done.model_label) == (None, None)


@pytest.mark.slow
def test_since_and_the_latest_correction_a_page_shows(db: Database, article: int) -> None:
    with db.transaction() as s:
        record(s, article, label="negative", who="ann", ticker="ACME", now=NOW)
        record(s, article, label="neutral", who="bob", now=NOW + timedelta(hours=2))
        record(s, article, label="positive", who="cy", ticker="BETA", now=NOW + timedelta(hours=3))
    with db.session() as s:
        assert [r.corrected_by for r in list_corrections(s, since=NOW + timedelta(hours=1))] == ["bob", "cy"]
        assert corrections_on_page(s, [article], ticker="ACME")[0][article].corrected_by == "bob"
        assert corrections_on_page(s, [article], ticker="BETA")[0][article].label == "positive"
        assert corrections_on_page(s, [article], ticker=None)[0][article].corrected_by == "bob"
        assert corrections_on_page(s, [], ticker="ACME")[0] == {}
