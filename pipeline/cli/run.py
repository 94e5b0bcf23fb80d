"""``finsent run`` (the whole pipeline once) and ``finsent score``."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from pipeline.cli.params import UtcDateTime
from pipeline.run import STAGES


@click.command("run")
@click.option("--demo", is_flag=True, help="Use the bundled demo feeds and watchlist.")
@click.option(
    "--now",
    type=UtcDateTime(past=True),
    help="Evaluate as of this time (backfills); default: the current time.",
)
@click.option(
    "--skip",
    type=click.Choice(STAGES),
    multiple=True,
    help="Skip a stage (repeatable).",
)
@click.option(
    "--migrate/--no-migrate",
    default=None,
    help="Upgrade the schema first (default: yes for the embedded database, no otherwise).",
)
@click.pass_obj
def run_cmd(app, demo: bool, now: datetime | None, skip: tuple[str, ...], migrate: bool | None) -> None:
    """Run the whole pipeline once: ingest -> score -> store -> alerts.

    Idempotent: running it again for the same feeds stores nothing twice and sends no
    alert twice. Alerts go to the outbox folder in the data dir unless
    FINSENT_ALERT_TRANSPORT names smtp or webhook (docs/alerts.md).
    """
    from pipeline.run import run_once

    stages = tuple(s for s in STAGES if s not in skip)
    with app.database(migrate=migrate) as database:
        click.echo(f"database: {database.display_url}{' (embedded)' if database.embedded else ''}")
        report = run_once(
            database,
            app.settings,
            now=now,
            demo=demo,
            stages=stages,
            progress=sys.stderr.isatty(),
        )
    click.echo(report.render())
    if "alerts" in stages and (demo or "outbox" in app.settings.alert_transports):  # a demo: the outbox
        click.echo(f"alert emails (.eml): {app.settings.outbox_dir}")
    if demo:
        # What a first-time user does next; the demo's feeds stay registered until removed.
        click.echo(
            "next: `finsent trends VLTA` (the demo company's trend), `finsent serve` (the web pages), "
            "`finsent feeds remove --demo --purge` before real use (docs/getting-started.md)"
        )


@click.command("score")
@click.option("--model", "model_path", help="Local model folder (default: current model).")
@click.option("--limit", type=click.IntRange(min=1), help="Score at most this many articles.")
@click.option(
    "--forget",
    "forget_version",
    metavar="VERSION",
    help="Instead of scoring, delete this model version's stored scores (after going back to an "
    "earlier model: the trends return to its scores). Not the version that serves.",
)
@click.pass_obj
def score_cmd(app, model_path: str | None, limit: int | None, forget_version: str | None) -> None:
    """Score stored articles that have no score for the model yet.

    With a new --model this re-scores history next to the old scores (both are kept).
    """
    from pipeline.score.service import score_pending
    from pipeline.trends.rollups import refresh_rollups

    if forget_version is not None:
        if limit is not None or model_path:
            # --model would also change which model counts as serving, and let its scores go.
            raise click.UsageError("--forget deletes a version's scores: it takes no --limit or --model")
        _forget(app, forget_version.strip())
        return
    settings = app.settings
    if model_path:
        settings = settings.model_copy(update={"model_path": model_path})
    with app.database() as database:
        report = score_pending(database, settings, limit=limit, progress=sys.stderr.isatty())
        click.echo(report.render())  # stored whatever happens next
        if report.scored or report.entity_scored:
            # The trend views read the rollups: up to date with the new scores (article or
            # company) now, not at the next run.
            click.echo(f"rollups: {refresh_rollups(database)} buckets refreshed")


def _forget(app, version: str) -> None:
    from pipeline.score.forget import forget_model_scores
    from pipeline.score.registry import serving_model
    from pipeline.trends.rollups import refresh_rollups

    serving = serving_model(app.settings).version
    with app.database() as database:
        click.echo(forget_model_scores(database, version, serving=serving).render())
        click.echo(f"rollups: {refresh_rollups(database)} buckets refreshed")
