"""``finsent feeds``: manage the feed list and see each feed's health."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from pipeline.cli.params import UtcDateTime
from pipeline.masking import mask_secrets


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


@click.group("feeds")
def feeds() -> None:
    """Add, list, import, export, remove and re-enable news feeds."""


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
        off = "" if r.enabled else f"  (removed earlier, so off: `finsent feeds enable {r.feed_id}`)"
        click.echo(f"{'added' if r.added else 'exists'}  #{r.feed_id}  {mask_secrets(r.url)}{off}")


@feeds.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also show disabled feeds.")
@click.pass_obj
def list_cmd(app, show_all: bool) -> None:
    """List feeds with their health: last success, failures in a row, next fetch, last error,
    and their tags (what `alerts silence --tag` and `feeds remove --tag` take).

    "asks" is the polling interval the feed itself asks for (<ttl>, sy:updatePeriod), which
    delays its next fetch (capped at 24 h); "-" when it gives none.
    """
    from pipeline.ingest.registry import list_feeds

    now = datetime.now(UTC)
    with app.database() as database, database.transaction() as session:
        rows = list_feeds(session, include_disabled=show_all)
        if not rows:
            click.echo(
                "no feeds yet: add some with `finsent feeds add URL...` or `finsent feeds import FILE.opml`"
            )
            return
        click.echo(
            f"{'id':<5} {'on':<3} {'name':<28} {'last success':<13} {'fails':>5} {'next fetch':<12} "
            f"{'asks':<5} url"
        )
        for f in rows:
            name = (f.name or "-")[:28]
            nxt = "due" if f.next_fetch_at is None or f.next_fetch_at <= now else _ago(f.next_fetch_at, now)
            asks = _span(f.poll_interval_s) if f.poll_interval_s else "-"
            click.echo(
                f"#{f.id:<4} {'on' if f.enabled else 'off':<3} {name:<28} {_ago(f.last_success_at, now):<13} "
                f"{f.consecutive_failures:>5} {nxt:<12} {asks:<5} {mask_secrets(f.url)}"
            )
            if f.tags:
                click.echo(f"{'':<6}tags: {', '.join(f.tags)}")
            if f.last_error and f.consecutive_failures:
                click.echo(f"{'':<6}last error: {f.last_error[:200]}")


@feeds.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def import_cmd(app, opml_file: Path) -> None:
    """Add the feeds listed in an OPML file (folders become tags). All or nothing."""
    from pipeline.ingest.opml import read_opml
    from pipeline.ingest.registry import add_feed_entries

    entries = read_opml(opml_file)
    if not entries:
        raise click.UsageError(f"{opml_file} lists no feeds (no <outline xmlUrl=...>)")
    with app.database() as database, database.transaction() as session:
        results = add_feed_entries(session, [(e.url, e.name, list(e.tags)) for e in entries])
    added = sum(r.added for r in results)
    click.echo(f"imported {opml_file}: {added} added, {len(results) - added} already present")


@feeds.command("export")
@click.argument("opml_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="Also export disabled feeds.")
@click.pass_obj
def export_cmd(app, opml_file: Path | None, show_all: bool) -> None:
    """Write the feed list as OPML to OPML_FILE (default: standard output)."""
    from pipeline.ingest.opml import write_opml
    from pipeline.ingest.registry import list_feeds

    with app.database() as database, database.transaction() as session:
        rows = [(f.url, f.name, list(f.tags or [])) for f in list_feeds(session, include_disabled=show_all)]
    text = write_opml(rows, now=datetime.now(UTC))
    if opml_file is None:
        click.echo(text, nl=False)
    else:
        try:
            opml_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot write {opml_file}: {exc.strerror or exc}", param_hint="OPML_FILE"
            ) from None
        click.echo(f"exported {len(rows)} feeds to {opml_file}", err=True)


@feeds.command("remove")
@click.argument("refs", nargs=-1)
@click.option("--tag", "tags", multiple=True, help="Also every feed with this tag (repeatable).")
@click.option("--demo", is_flag=True, help="Also the demo feeds that `finsent run --demo` added.")
@click.option("--purge", is_flag=True, help="Also delete the feed's stored articles and scores.")
@click.pass_obj
def remove_cmd(app, refs: tuple[str, ...], tags: tuple[str, ...], demo: bool, purge: bool) -> None:
    """Remove feeds by id or URL, by tag, or the demo's. Feeds with stored articles are
    disabled, not deleted, unless --purge.

    `finsent feeds remove --demo --purge` takes the demo's fictional news out of a data dir
    before real use, so it counts in no trend or baseline.
    """
    from pipeline.alerts.scopes import scope_text
    from pipeline.ingest.registry import demo_feeds, feeds_with_tags, remove_feeds

    if not (refs or tags or demo):
        raise click.UsageError("name feeds by id or URL, or give --tag or --demo")
    with app.database() as database:
        with database.transaction() as session:
            chosen = list(refs)
            if tags:
                tagged = feeds_with_tags(session, list(tags))
                if not tagged:
                    raise click.BadParameter(
                        f"no feed has tag {', '.join(tags)} (see `finsent feeds list`)", param_hint="--tag"
                    )
                chosen += [str(i) for i in tagged]
            if demo:
                found = demo_feeds(session)
                if not found:
                    raise click.BadParameter("no demo feed is registered", param_hint="--demo")
                chosen += [str(i) for i in found]
            results = remove_feeds(session, list(dict.fromkeys(chosen)), purge=purge)
            withdrawn = []
            if any(r.action == "purged" for r in results):
                from datetime import UTC, datetime

                from pipeline.alerts.withdraw import withdraw_orphaned_alerts

                # An alert that stood only on the purged articles would otherwise be found
                # calm by the next check and emailed as RESOLVED: news that no longer exists.
                withdrawn = withdraw_orphaned_alerts(
                    session, now=datetime.now(UTC), reason="its articles were purged with their feed"
                )
        for r in results:  # committed: said before the refresh below, whatever it does
            extra = f" (kept {r.articles} articles; --purge deletes them)" if r.action == "disabled" else ""
            click.echo(f"{r.action}  {mask_secrets(r.url)}{extra}")
        for alert in withdrawn:
            scope = scope_text(alert.scope_type, alert.scope_key)
            click.echo(f"withdrawn  alert #{alert.id} {scope} (its articles are gone; no email)")
        if any(r.action == "purged" for r in results):
            from pipeline.trends.rollups import refresh_rollups

            refresh_rollups(database)  # the trend views must not count the deleted articles


@feeds.command("enable")
@click.argument("refs", nargs=-1, required=True)
@click.pass_obj
def enable_cmd(app, refs: tuple[str, ...]) -> None:
    """Switch removed (disabled) feeds back on, by id or URL; due at the next run."""
    from pipeline.ingest.registry import enable_feeds

    with app.database() as database, database.transaction() as session:
        results = enable_feeds(session, list(refs))
    for r in results:
        click.echo(f"{'enabled' if r.changed else 'already on'}  #{r.feed_id}  {mask_secrets(r.url)}")


@feeds.command("relink")
@click.option(
    "--watchlist",
    "watchlist_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Watchlist CSV to link with [default: FINSENT_WATCHLIST_PATH].",
)
@click.option("--since", type=UtcDateTime(), help="Only articles published since this time (UTC).")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Articles per transaction.",
)
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing.")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Bring the trend rollups up to date afterwards (else the next scoring run does).",
)
@click.pass_obj
def relink_cmd(
    app,
    watchlist_path: Path | None,
    since: datetime | None,
    batch_size: int,
    dry_run: bool,
    refresh: bool,
) -> None:
    """Re-link stored articles to companies after a universe or watchlist edit.

    Links a company added to the universe (FINSENT_UNIVERSE) or the watchlist to the
    articles that already name it, unlinks those of a removed company, and recomputes
    each link's relevance. Running it again changes nothing.
    """
    from pipeline.companies.linking import relink_articles
    from pipeline.companies.universe import WATCHLIST_ONLY, companies_for
    from pipeline.companies.watchlist import load_watchlist

    path = watchlist_path or app.settings.watchlist_path
    if path is None and app.settings.universe.strip().lower() == WATCHLIST_ONLY:
        # Without a watchlist every name-matched link would be removed: make that explicit.
        raise click.UsageError(
            "no watchlist: pass --watchlist FILE or set FINSENT_WATCHLIST_PATH "
            "(an empty file unlinks every company name and keeps cashtags and exchange prefixes)"
        )
    watchlist = companies_for(app.settings, load_watchlist(path) if path is not None else None)
    with app.database() as database:
        report = relink_articles(database, watchlist, since=since, batch_size=batch_size, dry_run=dry_run)
        hours = 0
        if refresh and not dry_run and report.changed:
            from pipeline.trends.rollups import refresh_rollups

            hours = refresh_rollups(database)
    click.echo(
        f"{'would relink' if dry_run else 'relinked'} {report.articles} articles: "
        f"{report.added} links added, {report.removed} removed, {report.updated} updated "
        f"({report.changed} articles changed)"
    )
    if hours:
        click.echo(f"trend rollups refreshed ({hours} hour{'' if hours == 1 else 's'})")
