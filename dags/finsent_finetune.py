"""FinSent fine-tuning: train a candidate model, and promote it only through the gate.

Weekly by default (``FINSENT_FINETUNE_SCHEDULE``: a cron expression or preset, or
``manual`` for trigger-only). A scheduled run trains the recipe ``FINSENT_FINETUNE_RECIPE``
names, by default ``finsent-minilm-v3-feedback``: the release trained on with its own rows
and the analysts' corrections (empty: TrainConfig's defaults). Training reads the labelled data under the
``training_data_dir`` setting and runs in the queue ``FINSENT_TRAIN_QUEUE`` (default: the
scoring queue, so the GPU worker trains) and the pool ``FINSENT_TRAIN_POOL`` (default
``default_pool``; ``finsent_train`` in the docker deployment): never the scoring pool, so a
training run of hours does not hold up ingest's scoring. The evaluation gate compares
the candidate with the current model on the held-out benchmarks and promotes it only if
it is at least as good; it records the promoted model version, which scoring picks up on
its next run. Each run writes its checkpoint under ``<data_dir>/models/runs/<run_id>``,
so a retry reuses a finished checkpoint instead of training again.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

_schedule = os.environ.get("FINSENT_FINETUNE_SCHEDULE", "@weekly")
SCHEDULE = None if _schedule.strip().lower() in {"", "manual", "none"} else _schedule
# What a scheduled run trains: the release continued on its rows and the corrections, so
# that a weekly run can improve on the model that serves (the gate promotes it only then).
RECIPE = os.environ.get("FINSENT_FINETUNE_RECIPE", "finsent-minilm-v3-feedback").strip()
# Empty means unset, as for every FINSENT_* variable (compose passes unset ones as "").
TRAIN_QUEUE = os.environ.get("FINSENT_TRAIN_QUEUE") or os.environ.get("FINSENT_SCORE_QUEUE") or "default"
# Never the scoring pool by default: a training run holds its slot for hours, and ingest's
# score task (max_active_runs=1) would wait behind it, so no new ingest runs start. Its own
# pool (finsent_train in docker compose), else default_pool: a task in a pool that does not
# exist is never scheduled.
TRAIN_POOL = os.environ.get("FINSENT_TRAIN_POOL") or "default_pool"

DEFAULT_ARGS = {
    "owner": "finsent",
    "retries": 1,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=6),
}


@dag(
    dag_id="finsent_finetune",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["finsent", "model"],
    doc_md=__doc__,
    # Training options are declared once, in pipeline.sentiment.config.TrainConfig: these
    # params only name a recipe and what to override; the task validates them there.
    params={
        "recipe": Param(
            RECIPE,
            type="string",
            description="Recipe: a name in recipes/ or a path (default: FINSENT_FINETUNE_RECIPE); "
            "empty: TrainConfig's defaults.",
        ),
        "epochs": Param(None, type=["null", "integer"], description="Override the recipe's epochs."),
        "max_steps": Param(None, type=["null", "integer"], description="Stop after N steps (0 = off)."),
        "options": Param({}, type="object", description="Other training options to override, by name."),
    },
)
def finsent_finetune():
    @task(
        queue=TRAIN_QUEUE,
        pool=TRAIN_POOL,
        doc_md="Fine-tune on the configured labelled data; returns the candidate's folder.",
    )
    def train() -> str:
        from pipeline.airflow.tasks import finetune_train

        context = get_current_context()
        params = context["params"]
        overrides = dict(params["options"] or {})
        overrides.update({k: params[k] for k in ("epochs", "max_steps") if params[k] is not None})
        return finetune_train(context["run_id"], recipe=params["recipe"] or None, **overrides)

    @task(
        queue=TRAIN_QUEUE,
        pool=TRAIN_POOL,
        doc_md="Evaluate the candidate against the current model; promote it and record its "
        "version only if it passes the evaluation gate.",
    )
    def evaluate_and_promote(candidate: str) -> dict:
        from pipeline.airflow.runtime import run_time
        from pipeline.airflow.tasks import finetune_gate

        return finetune_gate(candidate, run_time(get_current_context()))

    evaluate_and_promote(train())


finsent_finetune()
