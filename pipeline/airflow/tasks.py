"""The body of every DAG task, one function each, called with the run's ``now``.

Each function loads the task settings (Airflow connections/Variable + FINSENT_ env) unless
given some, opens the database for the duration of the call, calls the stage function per
its contract and returns a small JSON-able summary (it becomes the task's XCom). All are
idempotent for the same ``now``: the stages store with unique keys and ON CONFLICT, so a
retried or re-run task adds nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.airflow.runtime import airflow_errors, database

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: Days of rollups the daily maintenance recomputes, for articles that arrived late.
ROLLUP_REPAIR_DAYS = 2


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from pipeline.airflow.config import task_settings

    return task_settings()


# --- finsent_ingest ---------------------------------------------------------------


@airflow_errors
def plan_ingest(now: datetime, *, shards: int, settings: Settings | None = None) -> list[list[int]]:
    """Register the configured feeds, then the due feeds split into shards for mapping."""
    from pipeline.airflow.planning import due_this_interval, shard
    from pipeline.errors import ConfigError
    from pipeline.run import register_configured_feeds

    if shards < 1:
        # Before any work: only the deployment's FINSENT_INGEST_SHARDS can fix it, so retrying
        # the plan (and every later run's) would only delay the failure.
        raise ConfigError(f"FINSENT_INGEST_SHARDS must be at least 1 (got {shards})", stage="ingest")
    settings = _settings(settings)
    with database(settings) as db:
        register_configured_feeds(db, settings)
        due = due_this_interval(db, now=now)
    groups = shard(due, shards)
    log.info("%d feeds due at %s in %d shard(s)", len(due), now.isoformat(), len(groups))
    return groups


def shard_label(feed_ids: Sequence[int], width: int = 60) -> str:
    """A short name for a shard in the Airflow UI: its feed ids."""
    label = "feeds " + ", ".join(map(str, feed_ids))
    return label if len(label) <= width else label[: width - 1] + "…"


@airflow_errors
def ingest_shard(
    feed_ids: Sequence[int], now: datetime, *, settings: Settings | None = None
) -> dict[str, Any]:
    """Fetch and store one shard of feeds. A feed that fails is recorded (fetches,
    feeds.last_error) by the ingest stage and does not fail the shard.

    Only the shard's feeds still due as of ``now`` are fetched, by the planner's rule
    (:func:`~pipeline.airflow.planning.due_this_interval`): the ingest stage fetches explicit
    ids even when not due, so a cleared shard of an older run, or a retry of this one,
    would otherwise fetch the live feed again as of a past ``now``, moving
    ``last_fetched_at`` / ``last_success_at`` back and writing a past-dated fetch row.
    """
    from pipeline.airflow.planning import due_this_interval
    from pipeline.ingest.service import IngestReport, ingest

    settings = _settings(settings)
    with database(settings) as db:
        due = set(due_this_interval(db, now=now))
        wanted = [feed_id for feed_id in feed_ids if feed_id in due]
        skipped = [feed_id for feed_id in feed_ids if feed_id not in due]
        if skipped:
            log.info(
                "skipped feed(s) %s: not due as of %s (fetched at or after it, e.g. by a later run or "
                "an earlier try of this one; backing off; or disabled)",
                ", ".join(map(str, skipped)),
                now.isoformat(),
            )
        # Nothing left to fetch: an empty report, without loading the company universe.
        report = ingest(db, settings, now=now, feed_ids=wanted) if wanted else IngestReport(now=now)
    if wanted:
        log.info("%s", report.render())
    return {
        "feeds": len(feed_ids),
        "new": report.new,
        "updated": report.updated,
        "duplicates": report.duplicates,
        "failed": report.failed,
        "skipped": len(skipped),
    }


@airflow_errors
def score(now: datetime, *, settings: Settings | None = None) -> dict[str, Any]:
    """Score every article that has no score from the current model (any earlier run's
    leftovers too), in batches of ``score_batch_size``."""
    from pipeline.score.service import score_pending

    settings = _settings(settings)
    with database(settings) as db:
        report = score_pending(db, settings, now=now)
    log.info("%s", report.render())
    return {
        "scored": report.scored,
        "entity_scored": report.entity_scored,
        "model_version": report.model_version,
    }


@airflow_errors
def refresh_trends(now: datetime, *, since: datetime | None = None, settings: Settings | None = None) -> int:
    """Bring the trend rollups up to date (incremental unless ``since`` is given)."""
    from pipeline.trends.rollups import refresh_rollups

    settings = _settings(settings)
    with database(settings) as db:
        refreshed = refresh_rollups(db, since=since)
    log.info("rollups: %d buckets refreshed (run time %s)", refreshed, now.isoformat())
    return refreshed


# --- finsent_alerts ---------------------------------------------------------------


@airflow_errors
def evaluate_alerts(
    now: datetime, *, model_version: str | None = None, settings: Settings | None = None
) -> str:
    """Evaluate spikes for the window ending at ``now`` on ``model_version``'s scores (the
    model the triggering ingest run scored with); queues deliveries in the outbox."""
    from pipeline.alerts.service import evaluate

    settings = _settings(settings)
    with database(settings) as db:
        report = evaluate(db, settings, now=now, model_version=model_version)
    rendered = report.render()
    log.info("%s", rendered)
    return rendered


@airflow_errors
def deliver_alerts(now: datetime, *, settings: Settings | None = None) -> str:
    """Send the pending deliveries. Each has a dedup key and a Message-ID, so a retry after
    a partial failure sends only what is still pending.

    Sending happens now, whatever the run's logical time: the claim's lease and the retry
    backoff are reckoned from the later of the two. From the logical time alone, an alerts run
    that started more than the lease after its interval's end (a queue backlog) claimed rows
    with a lease already past, and a `finsent alerts deliver` from a shell at that moment
    could claim and send the same message again."""
    from pipeline.alerts.service import deliver_pending

    settings = _settings(settings)
    with database(settings) as db:
        report = deliver_pending(db, settings, now=max(now, datetime.now(UTC)))
    rendered = report.render()
    log.info("%s", rendered)
    return rendered


# --- finsent_maintenance ----------------------------------------------------------


@airflow_errors
def repair_rollups(now: datetime, *, settings: Settings | None = None) -> int:
    """Recompute the last few days of rollups (late articles, re-scored ones)."""
    return refresh_trends(now, since=now - timedelta(days=ROLLUP_REPAIR_DAYS), settings=settings)


@airflow_errors
def prune_fetch_log(now: datetime, *, settings: Settings | None = None) -> int:
    """Delete ``fetches`` rows older than ``fetch_retention_days``, relative to the run's ``now``."""
    from pipeline.airflow.maintenance import prune_fetches

    settings = _settings(settings)
    with database(settings) as db:
        return prune_fetches(db, before=now - timedelta(days=settings.fetch_retention_days))


@airflow_errors
def prune_finetune_checkpoints(now: datetime, *, settings: Settings | None = None) -> list[str]:
    """Delete fine-tune checkpoints beyond ``finetune_runs_kept`` (the promoted and the
    pinned model are kept); returns the deleted folders (the task's XCom)."""
    from pipeline.airflow.maintenance import prune_checkpoints
    from pipeline.errors import ModelError
    from pipeline.score.registry import promoted_model

    settings = _settings(settings)
    try:
        promoted = promoted_model(settings.data_dir, strict=True)
    except ModelError as exc:
        # Which model serves cannot be read: any checkpoint might be it, so none is deleted.
        log.warning("no checkpoint deleted: %s", exc)
        return []
    protected = [Path(p) for p in (promoted, settings.model_path) if p]
    runs = finetune_runs_dir(settings)
    deleted = prune_checkpoints(runs, keep=settings.finetune_runs_kept, protected=protected, now=now)
    return [str(p) for p in deleted]


@airflow_errors
def feed_health(now: datetime, *, settings: Settings | None = None) -> dict[str, Any]:
    """Summarise feed health as of ``now`` (logged, and returned as the task's XCom)."""
    from pipeline.airflow.maintenance import feed_health_report

    settings = _settings(settings)
    with database(settings) as db:
        report = feed_health_report(db, now=now)
    log.info("%s", report.render())
    return report.as_dict()


# --- finsent_finetune -------------------------------------------------------------


def finetune_runs_dir(settings: Settings) -> Path:
    """The folder holding one checkpoint folder per fine-tune run."""
    return settings.data_dir / "models" / "runs"


def finetune_dir(settings: Settings, run_id: str) -> Path:
    """Where one fine-tune run writes its checkpoint: stable per run, so a retry reuses it."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
    return finetune_runs_dir(settings) / safe


@airflow_errors
def finetune_train(
    run_id: str, *, settings: Settings | None = None, recipe: str | None = None, **overrides: Any
) -> str:
    """Fine-tune on the configured labelled data; returns the candidate's folder.

    ``recipe`` names a recipe file (a path, or a name in ``recipes/``) whose values start the
    run; ``overrides`` (the DAG's params) are TrainConfig fields that win over it. Both are
    checked by TrainConfig itself, so the DAG repeats no option, default or range. A retry
    after the checkpoint was written (e.g. the gate failed) does not train again.
    """
    from pipeline.airflow.maintenance import checkpoint_complete
    from pipeline.errors import ConfigError
    from pipeline.feedback import SNAPSHOT_FILE, training_examples, write_training_snapshot
    from pipeline.sentiment.config import TrainConfig, load_recipe
    from pipeline.sentiment.data import FEEDBACK_SOURCE, parse_source_spec
    from pipeline.sentiment.train import train

    settings = _settings(settings)
    out_dir = finetune_dir(settings, run_id)
    if checkpoint_complete(out_dir):
        log.info("checkpoint %s already complete; not training again", out_dir)
        return str(out_dir)
    unknown = sorted(set(overrides) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"fine-tune params {', '.join(unknown)} are not training options", stage="train")
    values: dict[str, Any] = {}
    if recipe:
        values = load_recipe(recipe)
    values.update(overrides)
    # Where the run reads and writes is the deployment's, whatever the recipe says.
    values.update(data_dir=settings.training_data_dir, out_dir=out_dir, progress=False)
    config = TrainConfig(**values).validate("fine-tune param")
    if (
        FEEDBACK_SOURCE in {parse_source_spec(spec)[0] for spec in config.sources}
        and not config.feedback_file
    ):
        # Analysts' corrections as of this run, kept next to the checkpoint it trains.
        with database(settings) as db, db.session() as session:
            write_training_snapshot(training_examples(session), out_dir / SNAPSHOT_FILE)
        config.feedback_file = str(out_dir / SNAPSHOT_FILE)
    try:
        result = train(config)
    except (FileNotFoundError, ValueError) as exc:
        # Missing or malformed labelled data: a person has to fix the data dir.
        raise ConfigError(
            f"fine-tuning on {settings.training_data_dir} failed: {exc}", stage="train"
        ) from exc
    return str(result.out_dir)


@airflow_errors
def finetune_gate(candidate: str, now: datetime, *, settings: Settings | None = None) -> dict[str, Any]:
    """Benchmark the candidate and the current model on the same test rows; promote the
    candidate only if the evaluation gate passes. The gate records the promotion in
    ``<data_dir>/models/current.json``; the returned summary (the task's XCom) records
    the model version."""
    from pipeline.score.loading import model_version_of
    from pipeline.sentiment.gate import run_gate

    settings = _settings(settings)
    candidate_dir = Path(candidate)
    decision = run_gate(candidate_dir, settings)
    summary = {
        "candidate": str(candidate_dir),
        "model_version": model_version_of(candidate_dir),
        "promoted": decision.promote,
        "failures": list(decision.failures),
        # Whether the headline guard applied, or why it was only reported.
        "headline_check": decision.headline_note,
        "decided_at": now.isoformat(),
    }
    if decision.promote:
        log.info("promoted %s\n%s", summary["model_version"], decision.table())
    else:
        log.warning(
            "not promoted %s: %s\n%s",
            summary["model_version"],
            "; ".join(decision.failures),
            decision.table(),
        )
    return summary
