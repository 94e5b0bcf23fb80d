"""FinSent alerts: evaluate negative-sentiment spikes and deliver the alerts.

Scheduled on the asset ``finsent://sentiment_scores`` that every ``finsent_ingest`` run
updates. An asset-triggered run has no logical date or data interval in Airflow 3, so
"now" is the latest ``interval_end`` carried in the triggering events' extra (the ingest
run's data interval end), else the events' timestamp, else the run's ``run_after``. That
way the alerts for a re-run or backfilled ingest interval are evaluated for that
interval, and running the same interval again opens no second alert and sends no second
email (deliveries are deduplicated in the outbox).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

SCORES = Asset("finsent://sentiment_scores")

DEFAULT_ARGS = {
    "owner": "finsent",
    "retries": 4,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=15),
}


@dag(
    dag_id="finsent_alerts",
    schedule=[SCORES],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["finsent", "alerts"],
    doc_md=__doc__,
)
def finsent_alerts():
    @task(
        doc_md="Evaluate every scope's negative share in the window ending at the triggering "
        "interval's end; open, repeat or resolve alerts and queue their deliveries."
    )
    def evaluate() -> str:
        from pipeline.airflow.runtime import triggered_model_version, triggered_time
        from pipeline.airflow.tasks import evaluate_alerts

        context = get_current_context()
        return evaluate_alerts(triggered_time(context), model_version=triggered_model_version(context))

    @task(
        doc_md="Send the pending deliveries (email or outbox files). A failed send stays "
        "pending and is retried with backoff; a sent one is never sent again."
    )
    def deliver() -> str:
        from pipeline.airflow.runtime import triggered_time
        from pipeline.airflow.tasks import deliver_alerts

        return deliver_alerts(triggered_time(get_current_context()))

    evaluate() >> deliver()


finsent_alerts()
