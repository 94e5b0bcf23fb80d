"""Task bodies against the real database: planning, maintenance, fine-tuning retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pipeline.airflow.tasks import (
    deliver_alerts,
    feed_health,
    finetune_dir,
    finetune_train,
    ingest_shard,
    plan_ingest,
    prune_fetch_log,
    prune_finetune_checkpoints,
    shard_label,
)
from pipeline.db.models import Feed, Fetch

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_retention_task_uses_the_run_time(db, settings) -> None:
    with db.transaction() as session:
        feed = Feed(url="https://news.example/a.rss")
        session.add(feed)
        session.flush()
        for days in (1, 29, 31, 61):
            session.add(Fetch(feed_id=feed.id, started_at=NOW - timedelta(days=days), outcome="ok"))
    # As of a backfilled run 30 days ago nothing is old enough yet except the 61-day row.
    assert prune_fetch_log(NOW - timedelta(days=30), settings=settings) == 1
    assert prune_fetch_log(NOW, settings=settings) == 1
    # The retention is a setting.
    shorter = settings.model_copy(update={"fetch_retention_days": 10})
    assert prune_fetch_log(NOW, settings=shorter) == 1
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Fetch)).scalar_one() == 1


def test_feed_health_task_returns_a_json_summary(db, settings) -> None:
    with db.transaction() as session:
        session.add(Feed(url="https://news.example/a.rss", consecutive_failures=2, last_error="timeout"))
    summary = feed_health(NOW, settings=settings)
    assert summary["enabled"] == 1
    assert summary["failing"][0]["last_error"] == "timeout"


def test_finetune_dir_is_stable_and_safe(settings) -> None:
    run_id = "scheduled__2026-03-01T00:00:00+00:00"
    path = finetune_dir(settings, run_id)
    assert path == finetune_dir(settings, run_id)
    assert path.parent == settings.data_dir / "models" / "runs"
    assert ":" not in path.name and "+" not in path.name


def test_finetune_reuses_a_finished_checkpoint(settings) -> None:
    run_id = "manual__2026-03-01T00:00:00+00:00"
    out = finetune_dir(settings, run_id)
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    (out / "metrics.json").write_text("{}")
    # A retry after the gate failed must not train for hours again.
    assert finetune_train(run_id, settings=settings) == str(out)


@pytest.mark.slow
def test_finetune_without_training_data_fails_fast(settings, tmp_path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    empty = settings.model_copy(update={"training_data_dir": tmp_path / "no-data"})
    with pytest.raises(AirflowFailException, match="no-data"):
        finetune_train("manual__x", settings=empty, max_steps=1)


def test_plan_registers_configured_feeds_and_shards_the_due_ones(db, settings) -> None:
    feeds = [f"https://news.example/{i}.rss" for i in range(5)]
    configured = settings.model_copy(update={"feeds": feeds})
    groups = plan_ingest(NOW, shards=2, settings=configured)
    assert [len(g) for g in groups] == [3, 2]
    with db.session() as session:
        assert sorted(session.execute(select(Feed.url)).scalars()) == sorted(feeds)
    # Registering is idempotent: a second plan adds no feed.
    plan_ingest(NOW, shards=2, settings=configured)
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(Feed)).scalar_one() == 5


@pytest.mark.parametrize("shards", [0, -2])
def test_a_shard_count_below_one_fails_the_plan_at_once_naming_the_variable(settings, shards) -> None:
    # A ValueError would be retried 3 times per run, every run, for a setting only a person can fix.
    from airflow.sdk.exceptions import AirflowFailException

    expected = rf"FINSENT_INGEST_SHARDS must be at least 1 \(got {shards}\)"
    with pytest.raises(AirflowFailException, match=expected):
        plan_ingest(NOW, shards=shards, settings=settings)


def _feed_row(db, feed_id: int) -> dict:
    with db.session() as session:
        feed = session.get(Feed, feed_id)
        return {c.name: getattr(feed, c.name) for c in Feed.__table__.columns}


def _fetch_count(db) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(Fetch)).scalar_one()


def test_a_shard_of_an_older_run_leaves_a_feed_fetched_since_alone(db, settings, tmp_path, caplog) -> None:
    from ingest_helpers import rss, rss_item

    path = tmp_path / "feed.xml"
    path.write_bytes(rss([rss_item(1)]))
    configured = settings.model_copy(update={"feeds": [str(path)]})
    ten = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    [[feed_id]] = plan_ingest(ten, shards=1, settings=configured)
    assert ingest_shard([feed_id], ten, settings=settings)["new"] == 1
    before, fetches = _feed_row(db, feed_id), _fetch_count(db)
    assert before["last_fetched_at"] >= ten and fetches == 1

    # Clearing the 09:45 run's shard (or retrying the 10:00 one) must not fetch the live feed
    # again as of a past time: last_fetched_at / last_success_at would go back in time.
    path.write_bytes(rss([rss_item(1), rss_item(2)]))
    with caplog.at_level("INFO", logger="pipeline.airflow.tasks"):
        for now in (ten - timedelta(minutes=15), ten):
            result = ingest_shard([feed_id], now, settings=settings)
            assert result["new"] == 0 and result["skipped"] == 1
    assert _feed_row(db, feed_id) == before and _fetch_count(db) == fetches
    assert any(f"skipped feed(s) {feed_id}" in r.getMessage() for r in caplog.records)

    # The next run fetches it as usual.
    assert ingest_shard([feed_id], ten + timedelta(minutes=15), settings=settings)["new"] == 1
    assert _fetch_count(db) == fetches + 1


def test_shard_labels_are_short() -> None:
    assert shard_label([1, 5, 9]) == "feeds 1, 5, 9"
    long = shard_label(list(range(1000)))
    assert len(long) == 60 and long.endswith("…")


def test_a_model_promoted_by_the_finetune_dag_is_what_scoring_uses(settings, tmp_path) -> None:
    # The hand-over between finsent_finetune (the gate's record) and finsent_ingest (scoring).
    from pipeline.score.registry import resolve_model_path
    from pipeline.sentiment.gate import write_promotion

    candidate = tmp_path / "candidate"
    candidate.mkdir()
    (candidate / "config.json").write_text("{}")
    write_promotion(settings.data_dir, candidate)
    assert resolve_model_path(settings) == str(candidate.resolve())


def test_finetune_reads_a_recipe_and_refuses_a_bad_one_in_one_line(settings, tmp_path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(
        AirflowFailException, match=r"no-such-recipe does not exist: give a recipe file or a name in"
    ):
        finetune_train("manual__r1", settings=settings, recipe="no-such-recipe")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochz = 3\n")
    with pytest.raises(AirflowFailException, match=r"unknown key 'epochz' \(did you mean 'epochs'\?\)"):
        finetune_train("manual__r2", settings=settings, recipe=str(bad))
    # A DAG override is checked by TrainConfig's own range, not by a copy in the DAG.
    with pytest.raises(AirflowFailException, match="epochs"):
        finetune_train("manual__r3", settings=settings, recipe="finsent-minilm-v1", epochs=0)


@pytest.mark.slow
def test_finetune_with_the_feedback_source_snapshots_the_corrections(db, settings) -> None:
    # The DAG's `options` param names the source; the task exports the corrections it reads.
    from pathlib import Path

    from trends_helpers import add_article, add_feed

    from pipeline.feedback import record

    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        article = add_article(s, feed, "a1", "Acme recall widens to Europe", NOW, tickers=("ACME",))
        record(s, article, label="negative", who="ann", ticker="ACME", now=NOW)
    data = Path(__file__).resolve().parents[1] / "fixtures" / "sentiment" / "data"
    configured = settings.model_copy(update={"training_data_dir": data})
    out = Path(
        finetune_train(
            "manual__fb",
            settings=configured,
            sources=["fpb-split", "feedback"],
            max_steps=1,
            batch_size=4,
            max_length=24,
        )
    )
    assert "Acme recall widens to Europe" in (out / "feedback.jsonl").read_text()
    assert "Analyst corrections: 1 rows" in (out / "README.md").read_text()


def test_deliveries_are_claimed_on_the_wall_clock_not_the_runs_logical_time(settings, monkeypatch) -> None:
    # An alerts run started long after its interval's end must not claim with a lease that
    # has already run out (a shell's `finsent alerts deliver` would then send the same
    # message); a logical time ahead of the clock is kept.
    from pipeline.alerts.delivery import DeliveryReport

    seen: list[datetime] = []

    def deliver_pending(db, settings, *, now):
        seen.append(now)
        return DeliveryReport("outbox")

    monkeypatch.setattr("pipeline.alerts.service.deliver_pending", deliver_pending)
    before = datetime.now(UTC)
    deliver_alerts(before - timedelta(hours=1), settings=settings)
    ahead = datetime.now(UTC) + timedelta(hours=1)
    deliver_alerts(ahead, settings=settings)
    assert seen[0] >= before and seen[1] == ahead


def test_checkpoint_pruning_keeps_the_promoted_model_and_the_setting_s_newest(settings) -> None:
    import os

    from pipeline.score.registry import write_promotion

    now = datetime.now(UTC)
    runs = [finetune_dir(settings, f"scheduled__2026-0{i + 1}-01") for i in range(6)]
    for age, run in enumerate(reversed(runs), start=1):
        run.mkdir(parents=True)
        (run / "config.json").write_text("{}")
        (run / "metrics.json").write_text("{}")
        stamp = (now - timedelta(weeks=age)).timestamp()
        os.utime(run, (stamp, stamp))
    write_promotion(settings.data_dir, runs[0])  # the oldest serves
    deleted = prune_finetune_checkpoints(now, settings=settings.model_copy(update={"finetune_runs_kept": 3}))
    assert deleted == [str(runs[2]), str(runs[1])]
    assert [r.is_dir() for r in runs] == [True, False, False, True, True, True]
    # A promotion record that cannot be read could name any of them: none is deleted.
    settings.promoted_model_file.write_text("{broken")
    assert (
        prune_finetune_checkpoints(now, settings=settings.model_copy(update={"finetune_runs_kept": 1})) == []
    )
    assert [r.is_dir() for r in runs] == [True, False, False, True, True, True]
