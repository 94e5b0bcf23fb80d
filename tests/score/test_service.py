"""The scoring stage: every article scored once per model version, history kept."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from pipeline.db.models import Article, Feed, SentimentScore
from pipeline.score.registry import released_model
from pipeline.score.service import score_pending

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Verdict:
    label: str
    probabilities: dict[str, float]
    score: float


class KeywordClassifier:
    """A transparent stand-in for the transformer: the storage logic is under test here,
    not the model (the model has its own tests)."""

    def __init__(self, version: str):
        self.model_version = version
        self.calls: list[int] = []

    def score_articles(self, titles, summaries):
        self.calls.append(len(titles))
        out = []
        for title in titles:
            neg = 0.8 if "falls" in title else 0.1
            pos = 0.8 if "rises" in title else 0.1
            neu = 1.0 - neg - pos
            probs = {"negative": neg, "neutral": neu, "positive": pos}
            out.append(Verdict(max(probs, key=probs.get), probs, pos - neg))
        return out


def seed_articles(db, n: int) -> None:
    with db.transaction() as s:
        feed_id = s.execute(insert(Feed).values(url="https://x.example/rss").returning(Feed.id)).scalar_one()
        s.execute(
            insert(Article),
            [
                {
                    "feed_id": feed_id,
                    "item_key": f"g{i}",
                    "title": f"Stock {i} {'falls' if i % 3 == 0 else 'rises'}",
                    "published_at": NOW,
                    "first_seen_at": NOW,
                    "content_hash": f"{i:064d}",
                }
                for i in range(n)
            ],
        )


def count_scores(db, version: str | None = None) -> int:
    stmt = select(func.count()).select_from(SentimentScore)
    if version:
        stmt = stmt.where(SentimentScore.model_version == version)
    with db.session() as s:
        return s.execute(stmt).scalar_one()


def test_scores_every_article_once_across_pages(db, settings, monkeypatch) -> None:
    monkeypatch.setattr("pipeline.score.service.PAGE_SIZE", 7)
    seed_articles(db, 30)
    clf = KeywordClassifier("kw-1")
    report = score_pending(db, settings, classifier=clf, now=NOW)
    assert report.scored == 30 and count_scores(db) == 30
    assert max(clf.calls) <= 7
    again = score_pending(db, settings, classifier=clf, now=NOW)
    assert again.scored == 0 and count_scores(db) == 30
    with db.session() as s:
        row = s.execute(select(SentimentScore).order_by(SentimentScore.article_id)).scalars().first()
    assert row.label == "negative" and row.score == pytest.approx(-0.7)
    assert row.p_negative + row.p_neutral + row.p_positive == pytest.approx(1.0)


class NanClassifier(KeywordClassifier):
    """A model with broken weights: NaN for every text."""

    def score_articles(self, titles, summaries):
        nan = float("nan")
        return [Verdict("negative", {"negative": nan, "neutral": nan, "positive": nan}, nan) for _ in titles]


def test_a_model_that_gives_nan_stores_nothing_and_says_so(db, settings) -> None:
    from pipeline.errors import ModelError

    seed_articles(db, 5)
    with pytest.raises(ModelError, match="non-finite probabilities"):
        score_pending(db, settings, classifier=NanClassifier("broken-1"), now=NOW)
    assert count_scores(db) == 0


def test_new_model_adds_scores_and_keeps_old(db, settings) -> None:
    seed_articles(db, 5)
    score_pending(db, settings, classifier=KeywordClassifier("kw-1"), now=NOW)
    score_pending(db, settings, classifier=KeywordClassifier("kw-2"), now=NOW)
    assert count_scores(db, "kw-1") == 5 and count_scores(db, "kw-2") == 5


def test_the_model_is_loaded_only_when_something_needs_scoring(db, settings, monkeypatch) -> None:
    from pipeline.score.loading import model_version_of

    if released_model() is None:
        pytest.skip("no released model")

    def must_not_load(_settings, _path=None):
        raise AssertionError("the model was loaded with nothing to score")

    monkeypatch.setattr("pipeline.score.service.load_classifier", must_not_load)
    report = score_pending(db, settings)
    assert report.scored == 0 and report.model_version == model_version_of(released_model())
    seed_articles(db, 3)
    keyword = KeywordClassifier(report.model_version)
    monkeypatch.setattr("pipeline.score.service.load_classifier", lambda _s, _path=None: keyword)
    assert score_pending(db, settings).scored == 3
    monkeypatch.setattr("pipeline.score.service.load_classifier", must_not_load)
    assert score_pending(db, settings).scored == 0  # all scored: no load again


def test_limit(db, settings, monkeypatch) -> None:
    monkeypatch.setattr("pipeline.score.service.PAGE_SIZE", 3)  # pages of 3, 3 and 1
    seed_articles(db, 10)
    assert score_pending(db, settings, classifier=KeywordClassifier("kw"), limit=7).scored == 7
    assert count_scores(db) == 7
    # Newest first: a new model's first run over the history scores the news of the hour
    # before the years behind it.
    with db.session() as session:
        scored = set(session.execute(select(SentimentScore.article_id)).scalars())
        ids = sorted(session.execute(select(Article.id)).scalars())
    assert scored == set(ids[-7:])


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16", "int8"])
def test_model_precision_setting_reaches_the_classifier(settings, precision) -> None:
    import torch

    from pipeline.score.classifier import cpu_prefers_bf16
    from pipeline.score.service import load_classifier

    if released_model() is None:
        pytest.skip("no released model")
    if torch.cuda.is_available():
        pytest.skip("checks the CPU paths; on a GPU auto is fp16 and int8 is refused")
    clf = load_classifier(settings.model_copy(update={"model_precision": precision}))
    auto = "bf16" if cpu_prefers_bf16() else "fp32"
    assert clf.precision == (auto if precision == "auto" else precision)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_score_batch_size_setting_reaches_the_classifier(settings, tmp_path, batch_size) -> None:
    import torch
    from score_helpers import tiny_model_folder

    from pipeline.score.service import load_classifier

    folder = tiny_model_folder(tmp_path / "tiny", layers=1, temperature=None, head_std=None)
    clf = load_classifier(settings.model_copy(update={"score_batch_size": batch_size}), folder)
    default = 512 if torch.cuda.is_available() else 64
    assert clf.batch_size == (batch_size or default)


def test_edited_article_is_rescored_in_place(db, settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    seed_articles(db, 3)
    clf = KeywordClassifier("kw")
    score_pending(db, settings, classifier=clf, now=NOW)
    edited_at = NOW + timedelta(hours=1)
    with db.transaction() as s:
        first = s.execute(select(Article.id).order_by(Article.id)).scalars().first()
        s.execute(
            update(Article)
            .where(Article.id == first)
            .values(title="Stock 0 rises", content_hash="e" * 64, updated_at=edited_at)  # as ingest edits
        )
    report = score_pending(db, settings, classifier=clf, now=edited_at + timedelta(minutes=1))
    assert report.scored == 1
    assert count_scores(db) == 3
    with db.session() as s:
        row = s.execute(select(SentimentScore).where(SentimentScore.article_id == first)).scalar_one()
    assert row.label == "positive"
    assert score_pending(db, settings, classifier=clf, now=edited_at + timedelta(minutes=2)).scored == 0


def test_an_edit_in_a_backfill_is_rescored_although_its_score_is_newer(db, settings) -> None:
    # A backfill stamps edits with its logical time, long before the wall-clock time of the
    # first score: the text decides, not the clocks.
    from sqlalchemy import update

    seed_articles(db, 2)
    clf = KeywordClassifier("kw")
    assert score_pending(db, settings, classifier=clf).scored == 2  # scored_at: the wall clock
    with db.transaction() as s:
        first = s.execute(select(Article.id).order_by(Article.id)).scalars().first()
        s.execute(
            update(Article)
            .where(Article.id == first)
            .values(title="Stock 0 rises", content_hash="e" * 64, updated_at=NOW)  # NOW is in the past
        )
    assert score_pending(db, settings, classifier=clf).scored == 1
    with db.session() as s:
        row = s.execute(select(SentimentScore).where(SentimentScore.article_id == first)).scalar_one()
    assert (row.label, row.content_hash) == ("positive", "e" * 64)
    assert score_pending(db, settings, classifier=clf).scored == 0


def test_scores_from_before_the_hash_keep_the_time_rule(db, settings) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    seed_articles(db, 2)
    clf = KeywordClassifier("kw")
    score_pending(db, settings, classifier=clf, now=NOW)
    with db.transaction() as s:
        s.execute(update(SentimentScore).values(content_hash=None))  # as rows scored before 0007
        first = s.execute(select(Article.id).order_by(Article.id)).scalars().first()
        s.execute(update(Article).where(Article.id == first).values(updated_at=NOW + timedelta(hours=1)))
    assert score_pending(db, settings, classifier=clf, now=NOW + timedelta(hours=2)).scored == 1


# --- company scores (entity_scores) with a target-aware model ----------------------------


@pytest.fixture(scope="module")
def aware_folder(tmp_path_factory: pytest.TempPathFactory):
    from score_helpers import tiny_model_folder

    return tiny_model_folder(tmp_path_factory.mktemp("aware") / "tiny-aware", target_style="markers")


@pytest.fixture(scope="module")
def aware(aware_folder):
    from pipeline.score.classifier import SentimentClassifier

    return SentimentClassifier.load(aware_folder, device="cpu", precision="fp32")


# (title, summary, links as (ticker, company, mention))
STORIES = [
    (
        "Voltara shares jump after record deliveries, while Orbix slumps on recall",
        "Orbix recalls 40,000 cars. Voltara guides higher.",
        [("VLTA", "Voltara Motors Inc.", "Voltara"), ("ORBX", "Orbix Cloud Systems Inc.", "Orbix")],
    ),
    ("Voltara Motors recalls SUVs", None, [("VLTA", "Voltara Motors Inc.", None)]),  # linked before 0012
    ("$ZED jumps after a surprise buyback", "Analysts cheer.", [("ZED", None, "$ZED")]),
    ("Markets close flat", "Nothing moved.", []),
]


def seed_linked(db, stories=STORIES) -> list[int]:
    from pipeline.db.models import ArticleEntity

    with db.transaction() as s:
        feed_id = s.execute(insert(Feed).values(url="https://x.example/rss").returning(Feed.id)).scalar_one()
        ids = []
        for i, (title, summary, links) in enumerate(stories):
            article_id = s.execute(
                insert(Article)
                .values(
                    feed_id=feed_id,
                    item_key=f"s{i}",
                    title=title,
                    summary=summary,
                    published_at=NOW,
                    first_seen_at=NOW,
                    content_hash=f"{i:064d}",
                )
                .returning(Article.id)
            ).scalar_one()
            ids.append(article_id)
            for ticker, company, mention in links:
                s.execute(
                    insert(ArticleEntity).values(
                        article_id=article_id,
                        ticker=ticker,
                        company=company,
                        matched_by="name",
                        relevance=80,
                        mention=mention,
                        published_at=NOW,
                    )
                )
    return ids


def entity_rows(db) -> list[tuple]:
    from pipeline.db.models import EntityScore

    with db.session() as s:
        return s.execute(
            select(
                EntityScore.article_id,
                EntityScore.ticker,
                EntityScore.model_version,
                EntityScore.mention,
                EntityScore.label,
                EntityScore.content_hash,
            ).order_by(EntityScore.article_id, EntityScore.ticker)
        ).all()


def test_a_target_aware_model_scores_each_article_company_pair(db, settings, aware) -> None:
    ids = seed_linked(db)
    report = score_pending(db, settings, classifier=aware, now=NOW)
    assert (report.scored, report.entity_scored) == (4, 4)
    assert report.render() == f"scoring: 4 articles scored, 4 company scores with {aware.model_version}"
    rows = entity_rows(db)
    v = aware.model_version
    assert [(a, t, m, mention, h) for a, t, m, mention, _, h in rows] == [
        # A multi-company article: one row per company, each read at its own mention.
        (ids[0], "ORBX", v, "Orbix", f"{0:064d}"),
        (ids[0], "VLTA", v, "Voltara", f"{0:064d}"),
        # A link without a mention (made before 0012): the company's short name, found.
        (ids[1], "VLTA", v, "Voltara Motors", f"{1:064d}"),
        (ids[2], "ZED", v, "$ZED", f"{2:064d}"),
    ]
    # The stored verdict is the scorer's for that (article, mention).
    [[orbix, voltara]] = aware.score_article_targets([STORIES[0][0]], [STORIES[0][1]], [["Orbix", "Voltara"]])
    assert [r[4] for r in rows[:2]] == [orbix.label, voltara.label]
    # Re-running writes nothing.
    again = score_pending(db, settings, classifier=aware, now=NOW)
    assert (again.scored, again.entity_scored) == (0, 0)
    assert again.render() == f"scoring: nothing new to score (model {v})"
    assert entity_rows(db) == rows


def test_pairs_of_articles_scored_before_are_backfilled(db, settings, aware, monkeypatch) -> None:
    from pipeline.db.models import ArticleEntity

    monkeypatch.setattr("pipeline.score.service.PAGE_SIZE", 1)  # one article per page
    ids = seed_linked(db)
    # Scored by the same version before its company scores existed (before 0012).
    assert score_pending(db, settings, classifier=KeywordClassifier(aware.model_version), now=NOW).scored == 4
    assert entity_rows(db) == []
    limited = score_pending(db, settings, classifier=aware, now=NOW, limit=1)
    # Newest first: the last linked article's one company ($ZED).
    assert (limited.scored, limited.entity_scored) == (0, 1)
    assert [r.ticker for r in entity_rows(db)] == ["ZED"]
    rest = score_pending(db, settings, classifier=aware, now=NOW)
    assert (rest.scored, rest.entity_scored) == (0, 3)
    assert rest.render() == f"scoring: no new articles, 3 company scores with {aware.model_version}"
    assert len(entity_rows(db)) == 4
    # A link added later (a relink) is scored on the next run, alone.
    with db.transaction() as s:
        s.execute(
            insert(ArticleEntity).values(
                article_id=ids[3], ticker="MKT", company="Markets Inc.", matched_by="name", published_at=NOW
            )
        )
    assert score_pending(db, settings, classifier=aware, now=NOW).entity_scored == 1
    assert (ids[3], "MKT", aware.model_version, "Markets", f"{3:064d}") in [
        (a, t, m, mention, h) for a, t, m, mention, _, h in entity_rows(db)
    ]
    assert score_pending(db, settings, classifier=aware, now=NOW).entity_scored == 0


def test_an_edited_article_gets_new_company_scores(db, settings, aware) -> None:
    from sqlalchemy import update

    ids = seed_linked(db)
    score_pending(db, settings, classifier=aware, now=NOW)
    with db.transaction() as s:
        s.execute(
            update(Article)
            .where(Article.id == ids[0])
            .values(title="Orbix soars, Voltara sinks", content_hash="e" * 64, updated_at=NOW)
        )
    report = score_pending(db, settings, classifier=aware, now=NOW)
    assert (report.scored, report.entity_scored) == (1, 2)
    rows = [r for r in entity_rows(db) if r[0] == ids[0]]
    assert len(rows) == 2 and {r[5] for r in rows} == {"e" * 64}  # replaced, not added


def test_an_article_level_model_writes_no_company_scores(db, settings, caplog) -> None:
    import logging

    seed_linked(db)
    with caplog.at_level(logging.INFO, logger="pipeline.score.service"):
        report = score_pending(db, settings, classifier=KeywordClassifier("kw"), now=NOW)
    assert (report.scored, report.entity_scored) == (4, 0) and entity_rows(db) == []
    assert sum("not target-aware" in r.getMessage() for r in caplog.records) == 1


def test_the_model_is_loaded_for_a_backfill_only(db, settings, aware_folder, monkeypatch) -> None:
    from pipeline.score import service

    seed_linked(db)
    loads: list[str] = []
    real = service.load_classifier

    def counting(settings, model=None):
        loads.append(model.version)
        return real(settings.model_copy(update={"model_precision": "fp32"}), model)

    monkeypatch.setattr("pipeline.score.service.load_classifier", counting)
    first = score_pending(db, settings, model_path=str(aware_folder), now=NOW)
    assert (first.scored, first.entity_scored, len(loads)) == (4, 4, 1)
    assert score_pending(db, settings, model_path=str(aware_folder), now=NOW).entity_scored == 0
    assert len(loads) == 1  # nothing to do: not loaded
    with db.transaction() as s:
        s.execute(text("DELETE FROM entity_scores WHERE ticker = 'ZED'"))
    assert score_pending(db, settings, model_path=str(aware_folder), now=NOW).entity_scored == 1
    assert len(loads) == 2


def test_two_runs_of_one_model_score_each_article_once(db, settings, monkeypatch) -> None:
    """A manual `finsent score` beside the scheduled one: the second waits for the first's
    model lock and finds nothing left, instead of running the model over the same pages."""
    import threading
    import time

    monkeypatch.setattr("pipeline.score.service.PAGE_SIZE", 5)
    seed_articles(db, 20)

    class Slow(KeywordClassifier):
        def score_articles(self, titles, summaries):
            time.sleep(0.05)
            return super().score_articles(titles, summaries)

    classifiers = [Slow("kw-1"), Slow("kw-1")]
    reports = []
    threads = [
        threading.Thread(
            target=lambda c=c: reports.append(score_pending(db, settings, classifier=c, now=NOW))
        )
        for c in classifiers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.scored for r in reports) == [0, 20]
    assert sum(sum(c.calls) for c in classifiers) == 20
    assert count_scores(db) == 20


def _hold_scoring_lock(db, version: str):
    """Another run's scoring lock on ``version``, on a connection of the test's own."""
    from pipeline.score.service import one_scorer

    holder = one_scorer(db, version)
    holder.__enter__()
    return holder


def test_a_run_waiting_for_another_loads_no_model_and_gives_up_naming_the_holder(
    db, settings, monkeypatch
) -> None:
    from pipeline.errors import DatabaseError
    from pipeline.score.loading import model_version_of

    if released_model() is None:
        pytest.skip("no released model")
    seed_articles(db, 3)

    def must_not_load(_settings, _path=None):
        raise AssertionError("the model was loaded while another run held the lock")

    monkeypatch.setattr("pipeline.score.service.load_classifier", must_not_load)
    monkeypatch.setattr("pipeline.score.service.SCORE_LOCK_WAIT_S", 1.0)
    holder = _hold_scoring_lock(db, model_version_of(released_model()))
    try:
        holder_named = r"another run has been scoring with .* \(pid \d+ \(application_name "
        with pytest.raises(DatabaseError, match=holder_named):
            score_pending(db, settings)
    finally:
        holder.__exit__(None, None, None)
    assert count_scores(db) == 0


def test_a_lost_lock_connection_does_not_fail_a_run_whose_work_is_committed(db, settings) -> None:
    """The lock's own connection killed mid-run (an idle timeout, pg_terminate_backend):
    the pages were written; the run ends normally, and the lock is free for the next."""

    class KillsTheLock(KeywordClassifier):
        def score_articles(self, titles, summaries):
            key = int.from_bytes(hashlib.sha256(b"finsent-score:kw-1").digest()[:8], "big")
            with db.engine.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND granted AND classid = :c AND objid = :o"
                    ),
                    {"c": key >> 32, "o": key & 0xFFFFFFFF},
                )
            return super().score_articles(titles, summaries)

    seed_articles(db, 4)
    assert score_pending(db, settings, classifier=KillsTheLock("kw-1"), now=NOW).scored == 4
    assert score_pending(db, settings, classifier=KeywordClassifier("kw-1"), now=NOW).scored == 0
