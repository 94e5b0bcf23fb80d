"""Going back to an earlier model: the later version's stored scores deleted, the trends
back on the earlier model's verdicts, the serving version and unknown ones refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from trends_helpers import NOW, add_article, add_feed, add_score, at

from pipeline.cli import cli
from pipeline.db.models import EntityScore, SentimentScore
from pipeline.errors import ModelError
from pipeline.score.forget import forget_model_scores, stored_versions
from pipeline.score.loading import model_version_of
from pipeline.score.registry import released_model
from pipeline.trends.rollups import refresh_rollups


def _market_negatives(db) -> int:
    from sqlalchemy import text

    with db.session() as s:
        return s.execute(
            text("SELECT coalesce(sum(n_negative), 0) FROM sentiment_hourly WHERE scope_type = 'market'")
        ).scalar_one()


@pytest.fixture
def two_models(db):
    """Three VLTA articles the earlier model m1 called negative; the later m2 re-scored two
    of them positive (article and company), stored after."""
    with db.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        ids = [
            add_article(s, feed, f"a{i}", f"VLTA story {i}", at(19, 10, i), tickers=("VLTA",))
            for i in range(3)
        ]
        for i in ids:
            add_score(s, i, "negative", model="m1", scored_at=NOW - timedelta(days=2))
            add_score(s, i, "negative", ticker="VLTA", model="m1", scored_at=NOW - timedelta(days=2))
        for i in ids[:2]:
            add_score(s, i, "positive", model="m2", scored_at=NOW - timedelta(days=1))
            add_score(s, i, "positive", ticker="VLTA", model="m2", scored_at=NOW - timedelta(days=1))
    refresh_rollups(db)
    return ids


def test_forgetting_the_later_model_puts_the_trends_back_on_the_earlier_one(db, two_models) -> None:
    assert _market_negatives(db) == 1  # the newest score of each article counts: m2's twice
    done = forget_model_scores(db, "m2", serving="m1")
    assert (done.articles, done.companies) == (2, 2)
    refresh_rollups(db)
    assert _market_negatives(db) == 3
    with db.session() as s:
        assert s.scalar(select(func.count()).where(SentimentScore.model_version == "m2")) == 0
        assert s.scalar(select(func.count()).where(EntityScore.model_version == "m1")) == 3
    assert stored_versions(db) == {"m1": 3}


def test_the_serving_version_and_an_unknown_one_are_refused_and_nothing_is_deleted(db, two_models) -> None:
    with pytest.raises(ModelError, match="m2 is the model that serves: pin or promote"):
        forget_model_scores(db, "m2", serving="m2")
    with pytest.raises(ModelError, match=r"no scores of model m3 are stored \(stored: m1 \(3\), m2 \(2\)\)"):
        forget_model_scores(db, "m3", serving="m1")
    assert stored_versions(db) == {"m1": 3, "m2": 2}


@pytest.mark.skipif(released_model() is None, reason="no released model under models/")
def test_the_command_refuses_the_serving_model_in_one_line(db, two_models, database_url, tmp_path) -> None:
    env = {
        "FINSENT_DATABASE_URL": database_url,
        "FINSENT_DATA_DIR": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    serving = model_version_of(released_model())
    refused = CliRunner().invoke(cli, ["score", "--forget", serving], env=env)
    assert refused.exit_code == 1 and f"{serving} is the model that serves" in refused.output
    assert CliRunner().invoke(cli, ["score", "--forget", "m2", "--limit", "5"], env=env).exit_code == 2
    # --model names another model as serving: with it, the serving one's scores could go.
    pinned = ["score", "--model", str(tmp_path), "--forget", serving]
    assert "takes no --limit or --model" in CliRunner().invoke(cli, pinned, env=env).output
    done = CliRunner().invoke(cli, ["score", "--forget", "m2"], env=env)
    assert done.exit_code == 0, done.output
    assert "deleted 2 article scores and 2 company scores of m2" in done.output and "rollups:" in done.output
    assert _market_negatives(db) == 3
