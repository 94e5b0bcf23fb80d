"""FinSent maintenance: repair rollups, trim the fetch log, delete old fine-tune
checkpoints, report feed health.

Daily by default (``FINSENT_MAINTENANCE_SCHEDULE``). Every task works relative to the
run's data interval end, so a backfilled day trims and reports as of that day.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

# Empty means unset, as for every FINSENT_* variable (compose passes unset ones as "").
SCHEDULE = os.environ.get("FINSENT_MAINTENANCE_SCHEDULE") or "@daily"

DEFAULT_ARGS = {
    "owner": "finsent",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}


@dag(
    dag_id="finsent_maintenance",
    # Data-interval semantics (Airflow 3 defaults to trigger-only cron): each run owns
    # [previous tick, tick) and works as of the tick, also in backfills.
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["finsent", "maintenance"],
    doc_md=__doc__,
)
def finsent_maintenance():
    @task(doc_md="Recompute the last two days of trend rollups (late or re-scored articles).")
    def refresh_rollups() -> int:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import repair_rollups

        return repair_rollups(run_time(get_current_context()))

    @task(doc_md="Delete fetch-log rows older than the retention (fetch_retention_days, default 30).")
    def apply_retention() -> int:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import prune_fetch_log

        return prune_fetch_log(run_time(get_current_context()))

    @task(
        doc_md="Delete fine-tune checkpoints beyond the newest finetune_runs_kept (default 4); "
        "the promoted and the pinned model are kept."
    )
    def prune_checkpoints() -> list[str]:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import prune_finetune_checkpoints

        return prune_finetune_checkpoints(run_time(get_current_context()))

    @task(doc_md="Log failing and stale feeds and the last day's fetch outcomes.")
    def report_feed_health() -> dict:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import feed_health

        return feed_health(run_time(get_current_context()))

    refresh_rollups()
    apply_retention()
    prune_checkpoints()
    report_feed_health()


finsent_maintenance()
