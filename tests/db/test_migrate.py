"""Migrations: up and down on an empty database; the schema check; models match."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from pipeline.db.engine import make_engine
from pipeline.db.migrate import check_schema, current_revision, downgrade, head_revision, upgrade
from pipeline.db.models import Base
from pipeline.errors import SchemaError

TABLES = {
    "feeds",
    "fetches",
    "articles",
    "article_entities",
    "sentiment_scores",
    "alerts",
    "alert_deliveries",
    "alert_silences",
}


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with no schema, disposed after the test."""
    engine = make_engine(empty_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_upgrade_then_downgrade_on_empty_database(engine: Engine) -> None:
    assert current_revision(engine) is None
    with pytest.raises(SchemaError, match="run `finsent db upgrade`"):
        check_schema(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    check_schema(engine)
    upgrade(engine)  # a second upgrade is a no-op
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not (TABLES & set(inspect(engine).get_table_names()))
    upgrade(engine)  # and back up again: downgrade left nothing behind
    assert current_revision(engine) == head_revision()


def test_schema_behind_and_ahead_are_refused(engine: Engine) -> None:
    upgrade(engine, "0001")
    if head_revision() != "0001":
        with pytest.raises(SchemaError, match="behind the code"):
            check_schema(engine)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(SchemaError, match="newer than this FinSent") as info:
        check_schema(engine)
    assert "\n" not in str(info.value)
    with pytest.raises(SchemaError, match="newer than this FinSent"):
        upgrade(engine)  # what commands on the embedded database do first


def test_single_head() -> None:
    assert head_revision()


def test_models_match_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            # Views and rollup tables owned by SQL files are not ORM models: compare only ours.
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, type_, parent: (
                        type_ != "table" or name in Base.metadata.tables
                    ),
                },
            )
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models.py and the migrations disagree: {diff}"


def _raw_feed(conn) -> int:
    """A feed inserted with plain SQL: migration tests work below the models' revision."""
    return conn.execute(
        text("INSERT INTO feeds (url) VALUES ('https://x.example/rss') RETURNING id")
    ).scalar()


def _raw_article(conn, feed_id: int, key: str, **columns) -> int:
    """An article with plain SQL: the required columns from ``key``, plus ``columns``."""
    values = {
        "feed_id": feed_id,
        "item_key": key,
        "title": key,
        "published_at": "2026-11-20T10:00:00Z",
        "first_seen_at": "2026-11-20T10:00:00Z",
        "content_hash": key,
        "title_key": key,
        **columns,
    }
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    return conn.execute(
        text(f"INSERT INTO articles ({names}) VALUES ({params}) RETURNING id"), values
    ).scalar()


def test_0006_repairs_copies_whose_first_copy_was_purged(engine: Engine) -> None:
    # Databases purged before the fix keep copies that point at a deleted first copy.
    upgrade(engine, "0005")
    with engine.begin() as conn:
        feed = _raw_feed(conn)

        def article(key: str, cluster: int | None, novel: bool) -> int:
            return _raw_article(conn, feed, key, cluster_id=cluster, is_novel=novel)

        first = article("first", None, True)
        conn.execute(text("UPDATE articles SET cluster_id = id WHERE id = :i"), {"i": first})
        copy = article("copy", first, False)
        orphan_a = article("orphan-a", 999_999, False)  # its first copy was purged
        orphan_b = article("orphan-b", 999_999, False)
    upgrade(engine)
    with engine.connect() as conn:
        rows = dict(
            (r.id, (r.cluster_id, r.is_novel))
            for r in conn.execute(text("SELECT id, cluster_id, is_novel FROM articles"))
        )
    assert rows[first] == (first, True) and rows[copy] == (first, False)
    assert rows[orphan_a] == (orphan_a, True) and rows[orphan_b] == (orphan_a, False)


def test_0008_starts_from_the_latest_evaluation_alerts_record(engine: Engine) -> None:
    upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO alerts (scope_type, scope_key, state, started_at, last_evaluated_at, "
                "window_start, window_end, volume, negative_share, baseline_share, deviation) VALUES "
                "('ticker', 'ACME', 'resolved', :t, :t, :t, :t, 10, 0.5, 0.1, 4.0)"
            ),
            {"t": "2026-11-20T12:00:00Z"},
        )
    upgrade(engine)
    with engine.connect() as conn:
        seeded = conn.execute(text("SELECT evaluated_at FROM alert_evaluations")).scalars().all()
    assert seeded == [datetime(2026, 11, 20, 12, tzinfo=UTC)]


def test_0007_gives_current_scores_their_text_and_marks_no_hour(engine: Engine) -> None:
    upgrade(engine, "0006")
    with engine.begin() as conn:
        feed = _raw_feed(conn)
        ids = {}
        for key, updated in (("plain", None), ("edited", "2026-11-20T13:00:00Z")):
            ids[key] = _raw_article(conn, feed, key, content_hash=key * 8, updated_at=updated)
            conn.execute(
                text(
                    "INSERT INTO sentiment_scores (article_id, model_version, label, p_negative, "
                    "p_neutral, p_positive, score, scored_at) VALUES (:a, 'm', 'neutral', 0.1, 0.8, "
                    "0.1, 0, '2026-11-20T12:00:00Z')"
                ),
                {"a": ids[key]},
            )
        conn.execute(text("DELETE FROM trends_dirty_hours"))
    upgrade(engine)
    with engine.connect() as conn:
        hashes = dict(conn.execute(text("SELECT article_id, content_hash FROM sentiment_scores")).all())
        dirty = conn.execute(text("SELECT count(*) FROM trends_dirty_hours")).scalar()
    assert hashes == {ids["plain"]: "plain" * 8, ids["edited"]: None}  # the edit is scored again
    assert dirty == 0


def test_0010_adds_link_relevance_and_takes_it_away(engine: Engine) -> None:
    link = (
        "INSERT INTO article_entities (article_id, ticker, company, matched_by, published_at{col}) "
        "VALUES (:a, :t, NULL, 'cashtag', '2026-11-20T12:00:00Z'{val})"
    )
    upgrade(engine, "0009")
    with engine.begin() as conn:
        article = _raw_article(conn, _raw_feed(conn), "k")
        conn.execute(text(link.format(col="", val="")), {"a": article, "t": "OLD"})
    upgrade(engine, "0010")
    with engine.begin() as conn:
        conn.execute(text(link.format(col=", relevance", val=", 80")), {"a": article, "t": "NEW"})
        rows = dict(conn.execute(text("SELECT ticker, relevance FROM article_entities")).all())
    assert rows == {"OLD": None, "NEW": 80}  # links made before 0010 wait for a relink
    with pytest.raises(Exception, match="ck_article_entities_relevance_range"), engine.begin() as conn:
        conn.execute(text("UPDATE article_entities SET relevance = 101"))
    downgrade(engine, "0009")
    columns = {c["name"] for c in inspect(engine).get_columns("article_entities")}
    assert "relevance" not in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM article_entities")).scalar() == 2


def test_0011_keeps_corrections_apart_from_scores(engine: Engine) -> None:
    insert = (
        "INSERT INTO corrections (article_id, ticker, label, corrected_by) VALUES (:a, :t, :l, :w) "
        "RETURNING id"
    )
    upgrade(engine, "0011")
    with engine.begin() as conn:
        article = _raw_article(conn, _raw_feed(conn), "k")
        conn.execute(
            text(
                "INSERT INTO sentiment_scores (article_id, model_version, label, p_negative, "
                "p_neutral, p_positive, score) VALUES (:a, 'm', 'neutral', 0.1, 0.8, 0.1, 0)"
            ),
            {"a": article},
        )
        conn.execute(text(insert), {"a": article, "t": None, "l": "negative", "w": "ann"})
        conn.execute(text(insert), {"a": article, "t": "ACME", "l": "positive", "w": "ann"})
        conn.execute(text(insert), {"a": article, "t": "ACME", "l": "neutral", "w": "bob"})
    # One row per (article, company or none, person), the whole-article row included.
    for ticker in (None, "ACME"):
        with pytest.raises(Exception, match="uq_corrections_"), engine.begin() as conn:
            conn.execute(text(insert), {"a": article, "t": ticker, "l": "neutral", "w": "ann"})
    with pytest.raises(Exception, match="ck_corrections_label"), engine.begin() as conn:
        conn.execute(text(insert), {"a": article, "t": "OTHER", "l": "bearish", "w": "ann"})
    with engine.begin() as conn:  # re-scoring and relinking leave corrections alone
        conn.execute(text("DELETE FROM sentiment_scores"))
        conn.execute(text("DELETE FROM article_entities"))
        assert conn.execute(text("SELECT count(*) FROM corrections")).scalar() == 3
    downgrade(engine, "0010")
    assert "corrections" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM articles")).scalar() == 1


def test_0012_adds_company_scores_and_mentions_and_takes_them_away(engine: Engine) -> None:
    score = (
        "INSERT INTO entity_scores (article_id, ticker, model_version, mention, label, p_negative, "
        "p_neutral, p_positive, score) VALUES (:a, :t, :m, :mention, :l, 0.7, 0.2, 0.1, -0.6)"
    )
    upgrade(engine, "0011")
    with engine.begin() as conn:
        article = _raw_article(conn, _raw_feed(conn), "k")
        conn.execute(
            text(
                "INSERT INTO article_entities (article_id, ticker, matched_by, published_at) "
                "VALUES (:a, 'F', 'name', '2026-11-20T12:00:00Z')"
            ),
            {"a": article},
        )
    upgrade(engine, "0012")
    with engine.begin() as conn:
        # Links made before 0012 have no mention until a relink.
        assert conn.execute(text("SELECT mention FROM article_entities")).scalar() is None
        conn.execute(text(score), {"a": article, "t": "F", "m": "v1", "mention": "Ford", "l": "negative"})
        conn.execute(text(score), {"a": article, "t": "F", "m": "v2", "mention": "Ford", "l": "negative"})
    # One row per (article, company, model version); labels are the three classes only.
    with pytest.raises(Exception, match="uq_entity_scores_"), engine.begin() as conn:
        conn.execute(text(score), {"a": article, "t": "F", "m": "v1", "mention": None, "l": "neutral"})
    with pytest.raises(Exception, match="ck_entity_scores_label"), engine.begin() as conn:
        conn.execute(text(score), {"a": article, "t": "TSLA", "m": "v1", "mention": None, "l": "bearish"})
    with engine.begin() as conn:  # deleting the article takes its company scores
        conn.execute(text("DELETE FROM articles"))
        assert conn.execute(text("SELECT count(*) FROM entity_scores")).scalar() == 0
    downgrade(engine, "0011")
    assert "entity_scores" not in inspect(engine).get_table_names()
    assert "mention" not in {c["name"] for c in inspect(engine).get_columns("article_entities")}


def test_0013_company_scores_queue_their_hours_and_the_downgrade_removes_only_that(
    engine: Engine,
) -> None:
    triggers = text(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'entity_scores'::regclass AND NOT tgisinternal "
        "ORDER BY tgname"
    )
    score = (
        "INSERT INTO entity_scores (article_id, ticker, model_version, label, p_negative, p_neutral, "
        "p_positive, score) VALUES (:a, 'F', 'v1', 'negative', 0.7, 0.2, 0.1, -0.6)"
    )
    upgrade(engine, "0013")
    with engine.begin() as conn:
        assert conn.execute(triggers).scalars().all() == [
            "trends_entity_scores_delete",
            "trends_entity_scores_insert",
            "trends_entity_scores_update",
        ]
        article = _raw_article(conn, _raw_feed(conn), "k")
        conn.execute(text("DELETE FROM trends_dirty_hours"))
        conn.execute(text(score), {"a": article})
        assert conn.execute(text("SELECT count(*) FROM trends_dirty_hours")).scalar() == 1
    downgrade(engine, "0012")
    with engine.begin() as conn:
        assert conn.execute(triggers).scalars().all() == []
        # The queue function stays: sentiment_scores' triggers (0003) still use it.
        assert (
            conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'trends_queue_score_hours'")
            ).scalar()
            == 1
        )
    upgrade(engine)


def test_0014_alert_history_context_stops_before_the_windows_hour_and_the_downgrade_restores_it(
    engine: Engine,
) -> None:
    definition = text("SELECT pg_get_viewdef('v_alert_history'::regclass)")
    upgrade(engine, "0014")
    with engine.begin() as conn:
        assert "date_trunc('hour'" in conn.execute(definition).scalar()
    downgrade(engine, "0013")
    with engine.begin() as conn:
        assert "date_trunc" not in conn.execute(definition).scalar()
    upgrade(engine)


def test_0015_ui_sessions_up_and_down(engine: Engine) -> None:
    upgrade(engine, "0015")
    assert "ui_sessions" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO ui_sessions (nonce_hash, expires_at) VALUES (:h, now() + interval '1 day')"),
            {"h": "a" * 64},
        )
    downgrade(engine, "0014")
    assert "ui_sessions" not in inspect(engine).get_table_names()
    upgrade(engine)


def test_0017_merges_one_persons_corrections_in_any_case_and_holds_them_one(engine: Engine) -> None:
    insert = (
        "INSERT INTO corrections (article_id, ticker, label, corrected_by, corrected_at) "
        "VALUES (:a, :t, :l, :w, :at)"
    )
    upgrade(engine, "0016")
    with engine.begin() as conn:
        article = _raw_article(conn, _raw_feed(conn), "k")
        for ticker, label, who, hour in [
            ("ACME", "positive", "Ann", 9),
            ("ACME", "negative", "ann", 10),  # the latest of Ann's for ACME: it stands
            (None, "neutral", "ANN", 11),  # the whole article: another row
            (None, "negative", "ann", 8),
            ("ACME", "neutral", "bob", 9),
        ]:
            at = datetime(2026, 12, 1, hour, tzinfo=UTC)
            conn.execute(text(insert), {"a": article, "t": ticker, "l": label, "w": who, "at": at})
    upgrade(engine, "0017")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ticker, label, corrected_by FROM corrections"
                " ORDER BY ticker NULLS FIRST, corrected_by"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (None, "neutral", "ann"),  # the latest label, the first spelling
        ("ACME", "negative", "Ann"),
        ("ACME", "neutral", "bob"),
    ]
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with pytest.raises(Exception, match="uq_corrections_company"), engine.begin() as conn:
        conn.execute(text(insert), {"a": article, "t": "ACME", "l": "neutral", "w": "BOB", "at": at})
    downgrade(engine, "0016")
    with engine.begin() as conn:  # as spelt again: the merged rows stay merged
        assert conn.execute(text("SELECT count(*) FROM corrections")).scalar() == 3
        conn.execute(text(insert), {"a": article, "t": "ACME", "l": "neutral", "w": "BOB", "at": at})
    upgrade(engine)


def test_db_commands_name_an_unknown_revision_in_one_line(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    monkeypatch.setenv("FINSENT_DATABASE_URL", empty_database_url)
    up = CliRunner().invoke(cli, ["db", "upgrade", "--revision", "zzz"])
    down = CliRunner().invoke(cli, ["db", "downgrade", "+1", "--yes"])
    for result, hint in ((up, "--revision"), (down, "REVISION")):
        assert result.exit_code == 2, result.output
        assert f"Invalid value for {hint}" in result.output and "unexpected" not in result.output
        assert f"a revision from 0001 to {head_revision()}" in result.output
    assert "'zzz'" in up.output and "+1" in down.output


def test_0018_feeds_remember_where_they_moved_from_and_the_downgrade_forgets(engine: Engine) -> None:
    upgrade(engine, "0017")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO feeds (url) VALUES ('https://x.example/feed')"))
    upgrade(engine, "0018")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT moved_from FROM feeds")).scalar_one() == []
    downgrade(engine, "0017")
    with engine.connect() as conn:
        assert "moved_from" not in {c["name"] for c in inspect(conn).get_columns("feeds")}
        assert conn.execute(text("SELECT url FROM feeds")).scalar_one() == "https://x.example/feed"


def test_0019_folds_tags_and_the_tag_alerts_and_silences_that_name_them(engine: Engine) -> None:
    upgrade(engine, "0018")
    alert = (
        "INSERT INTO alerts (scope_type, scope_key, state, started_at, last_evaluated_at, window_start, "
        "window_end, volume, negative_share, baseline_share, deviation) VALUES "
        "('tag', :key, :state, now(), now(), now(), now(), 10, 0.5, 0.1, 4)"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feeds (url, tags) "
                "VALUES ('https://x.example/a', ARRAY['Markets', 'US', 'markets', ' ', E'\\tÉconomie\\n'])"
            )
        )
        conn.execute(text("INSERT INTO feeds (url, tags) VALUES ('https://x.example/b', '{us}')"))
        conn.execute(
            text(
                "INSERT INTO alert_silences (scope_type, scope_key, ends_at) VALUES ('tag', 'Markets', now())"
            )
        )
        conn.execute(text(alert), {"key": "Markets", "state": "resolved"})
        conn.execute(text(alert), {"key": "US", "state": "firing"})
        conn.execute(text(alert), {"key": "us", "state": "firing"})  # folding US would be a second
    upgrade(engine, "0019")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT tags FROM feeds ORDER BY id")).scalars().all() == [
            ["markets", "us", "économie"],  # folded as Python folds, whatever the collation
            ["us"],
        ]
        assert conn.execute(text("SELECT scope_key FROM alert_silences")).scalar_one() == "markets"
        keys = conn.execute(text("SELECT scope_key FROM alerts ORDER BY id")).scalars().all()
        assert keys == ["markets", "US", "us"]
    downgrade(engine, "0018")  # keeps the folded spellings
    with engine.connect() as conn:
        assert conn.execute(text("SELECT tags FROM feeds ORDER BY id LIMIT 1")).scalar_one()[:2] == [
            "markets",
            "us",
        ]
