"""``finsent companies``: the companies articles are linked to, and where they came from."""

from __future__ import annotations

import contextlib
import json

import click


@click.command("companies")
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option(
    "--demo",
    is_flag=True,
    help="With the demo's watchlist instead of yours, as `finsent run --demo` links.",
)
@click.pass_obj
def companies_cmd(app, query: str | None, as_json: bool, demo: bool) -> None:
    """List the companies of the universe (FINSENT_UNIVERSE) with the watchlist applied.

    QUERY keeps the companies whose ticker, name or alias contains it (any case). The
    first line says which universe is configured and where its facts came from. The demo's
    fictional companies (VLTA, ...) come from its own watchlist: `--demo` applies it instead
    of yours, as `finsent run --demo` does.
    """
    from pipeline.companies.universe import companies_for, describe

    settings = app.settings
    with contextlib.ExitStack() as stack:
        if demo:  # instead of a configured watchlist, as run --demo does
            from pipeline.ingest.demo import bundled_watchlist

            path = stack.enter_context(bundled_watchlist())
            settings = settings.model_copy(update={"watchlist_path": path})
        companies = companies_for(settings)
        where = describe(settings)
    rows = list(companies.companies)
    linked_from = None
    if query is not None and not query.strip().lstrip("$"):
        raise click.UsageError(f"QUERY {query!r} names nothing: give a ticker, a name or a headline")
    if query:
        rows = matching_companies(rows, query)
        if not rows:
            # Not in a ticker or name as listed ("$AAPL", "BRK-B", "Lowe’s", "Softbank"): what
            # the linker makes of it as a headline, so the answer is the one articles get.
            from pipeline.companies.linking import TickerLinker

            tickers = [m.ticker for m in TickerLinker(companies).link(query)]
            rows = [c for t in tickers if (c := companies.company(t)) is not None]
            linked_from = query if rows else None
    if as_json:
        for c in rows:
            click.echo(
                json.dumps(
                    {
                        "ticker": c.ticker,
                        "name": c.name,
                        "aliases": list(c.aliases),
                        "share_classes": list(c.share_classes),
                        "country": c.country,
                        "exchange": c.exchange,
                        "sector": c.sector,
                        "subscribers": list(c.subscribers),
                    }
                )
            )
        return
    click.echo(f"universe: {where}")
    click.echo(f"{len(rows)} of {len(companies)} companies" if query else f"{len(companies)} companies")
    if linked_from is not None:
        click.echo(f"  (no ticker or name contains {linked_from!r}; an article saying it links these)")
    if query and not rows:
        click.echo(
            "  none: add it to the watchlist (FINSENT_WATCHLIST_PATH, docs/companies.md)"
            + ("" if demo else "; `--demo` lists the demo's companies too")
        )
    for c in rows:
        also = ", ".join((*c.share_classes, *c.aliases))
        click.echo(f"  {c.ticker:<12} {c.name:<42} {c.country or '-':<3} {also}".rstrip())


def matching_companies(rows: list, query: str) -> list:
    """The companies whose ticker, name or alias contains ``query`` (any case; a cashtag's
    "$" and Yahoo's "BRK-B" for BRK.B read as the ticker; a typographic apostrophe as ')."""
    needle = query.strip().replace("\u2019", "'").lower()
    ticker = needle.lstrip("$").replace("-", ".")
    return [
        c
        for c in rows
        if any(ticker in t.lower() for t in c.tickers())
        or any(needle in n.replace("\u2019", "'").lower() for n, _ in c.names())
    ]
