"""``finsent ingest``: fetch every due feed once and print what each one gave."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from pipeline.cli.params import UtcDateTime


@click.command("ingest")
@click.option(
    "--feed", "feed_refs", multiple=True, help="Only this feed (id or URL; repeatable), due or not."
)
@click.option("--demo", is_flag=True, help="Also register the bundled demo feeds (and use their watchlist).")
@click.option(
    "--now", type=UtcDateTime(past=True), help="Ingest as of this past time (default: the current time)."
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal)."
)
@click.pass_obj
def ingest_cmd(
    app, feed_refs: tuple[str, ...], demo: bool, now: datetime | None, progress: bool | None
) -> None:
    """Fetch every due feed once and store new and edited articles.

    Exits 0 when the run completed, even if some feeds failed: those are listed,
    recorded and retried later with backoff. Exits non-zero only when the run could not
    proceed (database unreachable, bad configuration or watchlist).
    """
    from pipeline.ingest.fetch import utc_now
    from pipeline.ingest.registry import find_feeds
    from pipeline.ingest.service import ingest
    from pipeline.run import register_configured_feeds, register_demo

    now = now or utc_now()
    settings = app.settings
    with app.database() as database:
        if demo:
            settings = register_demo(database, settings, now)
        register_configured_feeds(database, settings)
        feed_ids = None
        if feed_refs:
            with database.transaction() as session:
                feed_ids = [f.id for f in find_feeds(session, list(feed_refs))]
        report = ingest(
            database,
            settings,
            now=now,
            feed_ids=feed_ids,
            progress=sys.stderr.isatty() if progress is None else progress,
        )
    click.echo(report.render())
