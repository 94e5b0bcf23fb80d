"""FinSent ingest: fetch the due feeds, score the new articles, store, announce.

Runs every 15 minutes by default (``FINSENT_INGEST_SCHEDULE``, a cron expression). The
due feeds are split into shards (``FINSENT_INGEST_SHARDS``, default 4) and fetched by a
mapped task, so Celery workers share the load. Scoring runs in the queue and pool named
by ``FINSENT_SCORE_QUEUE`` (default ``default``; ``gpu`` in the docker deployment) and
``FINSENT_SCORE_POOL`` (default ``default_pool``; ``finsent_gpu`` there), so GPU workers
take it, and a CPU-only deployment works unchanged. The last task updates the asset
``finsent://sentiment_scores``, which schedules ``finsent_alerts``.

Every task works on the run's data interval and uses its end as "now": re-running or
backfilling an interval (``airflow backfill create``) never looks ahead, and re-running it
stores nothing twice.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task

SCORES = Asset("finsent://sentiment_scores")

# Empty means unset, as for every FINSENT_* variable (compose passes unset ones as "").
SCHEDULE = os.environ.get("FINSENT_INGEST_SCHEDULE") or "*/15 * * * *"
SHARDS = int(os.environ.get("FINSENT_INGEST_SHARDS") or "4")
SCORE_QUEUE = os.environ.get("FINSENT_SCORE_QUEUE") or "default"
SCORE_POOL = os.environ.get("FINSENT_SCORE_POOL") or "default_pool"

DEFAULT_ARGS = {
    "owner": "finsent",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(minutes=30),
}


@dag(
    dag_id="finsent_ingest",
    # Data-interval semantics (Airflow 3 defaults to trigger-only cron): each run owns
    # [previous tick, tick) and works as of the tick, also in backfills.
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["finsent", "ingest"],
    doc_md=__doc__,
)
def finsent_ingest():
    @task(
        doc_md="Register the configured feeds (FINSENT_FEEDS) and split the feeds due at the "
        "interval end into shards for the mapped fetch."
    )
    def plan() -> list[list[int]]:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import plan_ingest

        return plan_ingest(run_time(get_current_context()), shards=SHARDS)

    @task(
        # Names each mapped instance in the UI by its feeds instead of 0, 1, 2...
        map_index_template="{{ shard_label }}",
        doc_md="Fetch, parse, deduplicate and store one shard of feeds. A feed that fails is "
        "recorded in the fetch log and on the feed, and does not fail the shard.",
    )
    def fetch(feed_ids: list[int]) -> dict:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import ingest_shard, shard_label

        context = get_current_context()
        context["shard_label"] = shard_label(feed_ids)
        return ingest_shard(feed_ids, run_time(context))

    @task(
        queue=SCORE_QUEUE,
        pool=SCORE_POOL,
        # Runs when no shard was due (mapped over nothing = skipped): earlier runs may
        # have left articles unscored.
        trigger_rule="none_failed",
        doc_md="Score every article without a score from the current model, in batches, on "
        "the GPU queue when there is one.",
    )
    def score() -> dict:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import score as score_articles

        return score_articles(run_time(get_current_context()))

    @task(
        outlets=[SCORES],
        doc_md="Refresh the trend rollups and update the sentiment_scores asset, with the "
        "interval end in the event's extra for finsent_alerts.",
    )
    def publish(scoring: dict) -> int:
        from pipeline.airflow.runtime import asset_extra, run_time
        from pipeline.airflow.tasks import refresh_trends

        context = get_current_context()
        now = run_time(context)
        refreshed = refresh_trends(now)
        context["outlet_events"][SCORES].extra = asset_extra(
            now, scored=scoring.get("scored", 0), model_version=scoring.get("model_version")
        )
        return refreshed

    fetched = fetch.expand(feed_ids=plan())
    scored = score()
    fetched >> scored
    publish(scored)


finsent_ingest()
