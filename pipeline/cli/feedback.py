"""``finsent feedback``: analysts' corrections, listed, exported or removed (docs/feedback.md)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _since(value: str | None) -> datetime | None:
    from pipeline.trends.queries import parse_since

    if value is None:
        return None
    try:
        return parse_since(value, _utcnow())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


SINCE_HELP = "Only corrections made since: 7d, 48h, 2w, or an ISO date/time (UTC unless it has an offset)."


@click.group("feedback")
def feedback() -> None:
    """Analysts' corrections of the model's labels (made on the web pages)."""


@feedback.command("list")
@click.option("--since", "since_text", help=SINCE_HELP)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N (oldest first).")
@click.pass_obj
def list_cmd(app, since_text: str | None, limit: int | None) -> None:
    """Corrections, oldest first: when, who, the article (and company), the model's label
    and the analyst's."""
    from pipeline.feedback import list_corrections

    since = _since(since_text)
    with app.database() as db, db.session() as session:
        rows = list_corrections(session, since=since, limit=limit)
    if not rows:
        click.echo("no corrections" + (f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""))
        return
    click.echo(
        f"{'id':>6}  {'when (UTC)':16}  {'who':20}  {'article':>8}  {'ticker':8}  {'model':>8} -> label"
    )
    for r in rows:
        title = " ".join(r.title.split())  # one line a correction, whatever the feed sent
        title = title if len(title) <= 60 else title[:59] + "…"
        model = r.model_label or "unscored"
        click.echo(
            f"{r.id:>6}  {r.corrected_at.astimezone(UTC):%Y-%m-%d %H:%M}  {r.corrected_by[:20]:20}  "
            f"{r.article_id:>8}  {(r.ticker or '-'):8}  {model:>8} -> {r.label}  {title}"
        )
    click.echo(f"{len(rows)} correction(s)")


@feedback.command("export")
@click.option("--since", "since_text", help=SINCE_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="Output format.",
)
@click.pass_obj
def export_cmd(app, since_text: str | None, fmt: str) -> None:
    """Write corrections to stdout, oldest first: JSON lines (one object a correction) or
    CSV with a header. Nothing to export is not an error (no output, or the CSV header)."""
    from pipeline.feedback import list_corrections, write_corrections

    since = _since(since_text)
    with app.database() as db, db.session() as session:
        rows = list_corrections(session, since=since)
    write_corrections(rows, sys.stdout, fmt)


@feedback.command("remove")
@click.argument("correction_ids", nargs=-1, type=click.IntRange(min=1, max=2**63 - 1), required=True)
@click.pass_obj
def remove_cmd(app, correction_ids: tuple[int, ...]) -> None:
    """Withdraw corrections (by the ids `finsent feedback list` shows): deleted, so the next
    training run does not read them. An unknown id removes nothing."""
    from pipeline.feedback import remove_corrections

    with app.database() as db, db.transaction() as session:
        try:
            removed = remove_corrections(session, correction_ids)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    for r in removed:
        scope = f"for {r.ticker}" if r.ticker else "(whole article)"
        click.echo(
            f"removed correction #{r.id}: article {r.article_id} {scope} {r.label}, by {r.corrected_by}"
        )
