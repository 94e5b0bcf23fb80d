"""``finsent trends``: sentiment of a ticker or the market over time."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import click

log = logging.getLogger(__name__)


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)  # the outermost entry point: the only place "now" is read
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time", param_hint="--now") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@click.command("trends")
@click.argument("ticker", required=False)
@click.option("--market", is_flag=True, help="The whole market instead of one ticker.")
@click.option(
    "--since",
    "since_text",
    metavar="PERIOD|DATE",
    help="Start: a period back from now (7d, 48h, 2w) or an ISO date/time in UTC "
    "[default: 7d by hour, 30d by day]. Whole hours or days are shown: the table starts at the "
    "start of the one that contains it.",
)
@click.option("--by", type=click.Choice(["hour", "day"]), default="hour", show_default=True)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write a chart (.png, .svg or .pdf).",
)
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Bring the rollups up to date first (needs write access; skipped for read-only roles).",
)
@click.option(
    "--headlines",
    "n_headlines",
    type=click.IntRange(min=0, max=100),
    default=5,
    show_default=True,
    help="With a TICKER: list its newest N headlines of the period with their label for that "
    "company (0: none).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object (scope, key, by, since, until, rows, total, headlines, known) "
    "instead of the table.",
)
@click.option("--now", "now_text", hidden=True, help="Pretend it is this time (tests, replays).")
@click.pass_obj
def trends_cmd(
    app,
    ticker: str | None,
    market: bool,
    since_text: str | None,
    by: str,
    plot_path: Path | None,
    refresh: bool,
    n_headlines: int,
    as_json: bool,
    now_text: str | None,
) -> None:
    """Sentiment of TICKER (or --market) per hour or day, as a table.

    Buckets are UTC hours or days; hours without news are left out. Shares are of scored
    articles; `mean` is the mean of p_positive - p_negative, `weighted` weights it by the
    model's confidence. The same numbers are in the v_*_sentiment_* SQL views.

    A TICKER's figures are the company's own sentiment (its score from a target-aware
    model, else the article's) over the articles about it: passing mentions do not count.
    The market's are the articles' own scores. Below a TICKER's table, its newest headlines
    with their label for that company; "(article)" marks one without a company score.
    """
    from pipeline.trends.queries import (
        Scope,
        company_headlines,
        load_trend,
        normalise_ticker,
        parse_since,
        similar_tickers,
        ticker_known,
    )

    if market == (ticker is not None):
        raise click.UsageError("give a TICKER or --market (not both)")
    if ticker is not None:
        try:
            scope = Scope.ticker(normalise_ticker(ticker))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="TICKER") from None
    else:
        scope = Scope.market()
    if plot_path is not None:
        _check_plot_path(plot_path)
    now = _parse_now(now_text)
    try:
        since = parse_since(since_text or ("7d" if by == "hour" else "30d"), now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None

    with app.database() as db:
        if refresh:
            _refresh(db)
        trend = load_trend(db, scope, since=since, now=now, by=by)
        headlines = []
        if scope.scope_type == "ticker" and trend.points:
            # From where the table starts (the whole first bucket), not the raw --since.
            headlines = company_headlines(db, scope.scope_key, since=trend.since, now=now, limit=n_headlines)
        known = scope.scope_type == "market" or bool(trend.points) or ticker_known(db, scope.scope_key)
        near = [] if known else similar_tickers(db, scope.scope_key)
    if as_json:
        import json

        total = trend.total
        click.echo(
            json.dumps(
                {
                    "scope": scope.scope_type,
                    "key": scope.scope_key if scope.scope_type == "ticker" else None,
                    "by": by,
                    "since": trend.since.astimezone(UTC).isoformat(),
                    "until": trend.until.astimezone(UTC).isoformat(),
                    "rows": [p.as_dict() for p in trend.points],
                    "total": total.as_dict() | {"bucket": None} if total else None,
                    "headlines": [h.as_dict() for h in headlines],
                    "known": known,
                }
            )
        )
    elif not trend.points:
        hint = ""
        if not known:
            hint = _universe_hint(app.settings, ticker or "", scope.scope_key) or (
                " (no article has ever mentioned it: check the spelling"
                + (f"; did you mean {' or '.join(near)}?)" if near else ")")
            )
        click.echo(f"no data for {scope.label} since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC{hint}")
        return
    else:
        click.echo(trend.render())
    if headlines and not as_json:
        click.echo(
            f"\nnewest headlines, label for {scope.label} "
            '("(article)": no company score, the article\'s label):'
        )
        for headline in headlines:
            click.echo("  " + headline.render())
    if plot_path is not None and trend.points:
        from pipeline.trends.plot import plot_trend

        try:
            plot_trend(trend, plot_path)
        except OSError as exc:  # the disk filled, the folder went away since the check
            raise click.ClickException(
                f"chart {plot_path} not written ({exc.strerror or exc}): the table above stands"
            ) from None
        click.echo(f"chart: {plot_path}", err=as_json)  # stdout holds only the JSON


def _check_plot_path(path: Path) -> None:
    from pipeline.trends.plot import FORMATS

    if path.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{path} must end in {', '.join(FORMATS)}", param_hint="--plot")
    # Checked before the query: a chart that cannot be written must not fail after the table.
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise click.BadParameter(
            f"folder {folder} {what}: create it first (mkdir -p {folder}) or choose another path",
            param_hint="--plot",
        )
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"{path} cannot be written here: choose another path", param_hint="--plot")


def _refresh(db) -> None:
    from sqlalchemy.exc import DBAPIError

    from pipeline.trends.rollups import refresh_rollups

    try:
        refresh_rollups(db)
    except DBAPIError as exc:  # a read-only role: show what the pipeline last refreshed
        # 42501 insufficient_privilege, 25006 read_only_sql_transaction
        if getattr(exc.orig, "pgcode", None) not in ("42501", "25006"):
            raise
        log.warning("rollups not refreshed (this role cannot write): figures are as of the last refresh")


def _universe_hint(settings, given: str, ticker: str) -> str | None:
    """What the company universe says of a ticker no article has mentioned: a company of it
    with no news yet, or the ticker of a class or name as given ("BRK-B", "apple")."""
    from pipeline.cli.companies import matching_companies
    from pipeline.companies.universe import companies_for
    from pipeline.errors import FinSentError

    try:
        companies = companies_for(settings)
    except FinSentError:  # a hint only: the universe's own errors belong to `finsent companies`
        return None
    company = companies.company(ticker)
    if company is not None:
        named = f"{company.ticker}, {company.name},"
        return f" ({named} is in the company universe; no article has mentioned it yet)"
    found = [c.ticker for c in matching_companies(list(companies.companies), given)][:3]
    return f" (no article has mentioned it; the company universe has {' or '.join(found)})" if found else None
