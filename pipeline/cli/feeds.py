"""``finsent feeds``: manage the feed list."""

from __future__ import annotations

import click


@click.group("feeds")
def feeds() -> None:
    """Add, list and remove news feeds."""


@feeds.command("add")
@click.argument("locations", nargs=-1, required=True)
@click.option("--name", help="Display name (for a single feed).")
@click.option("--tag", "tags", multiple=True, help="Tag, e.g. a source or market (repeatable).")
@click.pass_obj
def add_cmd(app, locations: tuple[str, ...], name: str | None, tags: tuple[str, ...]) -> None:
    """Add one or many feeds: http(s) URLs, file:// URLs or local files.

    All are checked first; if any is invalid none is added.
    """
    from pipeline.ingest.registry import add_feeds

    if name and len(locations) > 1:
        raise click.UsageError("--name applies to a single feed; add the others separately")
    with app.database() as database, database.transaction() as session:
        results = add_feeds(session, list(locations), name=name, tags=list(tags))
    for r in results:
        click.echo(f"{'added' if r.added else 'exists'}  #{r.feed_id}  {r.url}")


@feeds.command("list")
@click.pass_obj
def list_cmd(app) -> None:
    """List feeds with their health."""
    from pipeline.ingest.registry import list_feeds

    with app.database() as database, database.transaction() as session:
        rows = list_feeds(session)
        if not rows:
            click.echo("no feeds yet: add some with `finsent feeds add URL...`")
            return
        for f in rows:
            state = "on " if f.enabled else "off"
            health = f"failures={f.consecutive_failures}" + (
                f" last_error={f.last_error!r}" if f.last_error else ""
            )
            click.echo(f"#{f.id:<4} {state} {f.name or '-':<20} {f.url}  {health}")


@feeds.command("remove")
@click.argument("refs", nargs=-1, required=True)
@click.option("--purge", is_flag=True, help="Also delete the feed's stored articles and scores.")
@click.pass_obj
def remove_cmd(app, refs: tuple[str, ...], purge: bool) -> None:
    """Remove feeds by id or URL. Feeds with stored articles are disabled, not deleted,
    unless --purge."""
    from pipeline.ingest.registry import remove_feeds

    with app.database() as database, database.transaction() as session:
        results = remove_feeds(session, list(refs), purge=purge)
    for r in results:
        extra = f" (kept {r.articles} articles; --purge deletes them)" if r.action == "disabled" else ""
        click.echo(f"{r.action}  {r.url}{extra}")
