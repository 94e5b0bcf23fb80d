"""``finsent alerts``: evaluate, list, silence, deliver, and send a test email."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import click

from pipeline.cli.params import UtcDateTime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, timedelta):
            return value
        m = _DURATION.match(value)
        if not m:
            self.fail(f"'{value}' is not a duration such as 30m, 4h, 2d or 1w", param, ctx)
        try:
            length = timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))})
        except OverflowError:
            length = timedelta.max
        if length > timedelta(days=3660):
            self.fail(f"'{value}' is longer than ten years: give a shorter duration, e.g. 30d", param, ctx)
        return length


def _utcnow() -> datetime:
    return datetime.now(UTC)


# The words analysts reach for first, taken as the commands' other names.
_ALIASES = MappingProxyType({"mute": "silence", "unmute": "unsilence"})


class _AliasedGroup(click.Group):
    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, _ALIASES.get(name, name))


@click.group("alerts", cls=_AliasedGroup)
def alerts() -> None:
    """Negative-spike alerts: check now, list, silence a scope, test the email set-up."""


@alerts.command("check")
@click.option(
    "--at", "at", type=UtcDateTime(past=True), help="Evaluate as of this past time (backfill); default: now."
)
@click.option("--no-deliver", is_flag=True, help="Only evaluate; leave emails queued in the outbox table.")
@click.option(
    "--model-version",
    help="Count this model version's scores (default: the version whose scores were stored last).",
)
@click.option("--no-notify", is_flag=True, help="Record alerts but queue no email (backfills of past times).")
@click.pass_obj
def check_cmd(app, at: datetime | None, no_deliver: bool, model_version: str | None, no_notify: bool) -> None:
    """Evaluate every scope (tickers, sources, tags, market) and send due emails.

    Running it twice for the same time changes nothing and sends nothing twice.
    """
    from pipeline.alerts.delivery import deliver_pending
    from pipeline.alerts.evaluate import evaluate

    now = at or _utcnow()
    with app.database() as db:
        report = evaluate(db, app.settings, now=now, model_version=model_version, notify=not no_notify)
        click.echo(report.render())
        if not no_deliver:
            click.echo(deliver_pending(db, app.settings, now=max(now, _utcnow())).render())


@alerts.command("deliver")
@click.option("--retry-failed", is_flag=True, help="Re-queue deliveries that were given up first.")
@click.option(
    "--resend",
    "resend_ids",
    type=int,
    multiple=True,
    metavar="ID",
    help="Queue this unknown or failed delivery again, with the same Message-ID (repeatable).",
)
@click.option(
    "--mark-sent",
    "mark_sent_ids",
    type=int,
    multiple=True,
    metavar="ID",
    help="Record this unknown delivery as delivered: it arrived (repeatable).",
)
@click.pass_obj
def deliver_cmd(app, retry_failed: bool, resend_ids: tuple[int, ...], mark_sent_ids: tuple[int, ...]) -> None:
    """Send queued alerts that are due (failed sends are retried with backoff).

    A delivery whose outcome is unknown (the server got the message and did not answer) is
    never resent on its own: check the mailbox, then --resend ID or --mark-sent ID.
    """
    from pipeline.alerts.delivery import deliver_pending, mark_sent, resend
    from pipeline.alerts.delivery import retry_failed as requeue

    now = _utcnow()
    with app.database() as db:
        if mark_sent_ids:
            done = mark_sent(db, list(mark_sent_ids), now=now)
            click.echo("marked delivered: " + ", ".join(f"#{i}" for i in done))
        if resend_ids:
            done = resend(db, list(resend_ids), now=now)
            click.echo("queued again: " + ", ".join(f"#{i}" for i in done))
        if retry_failed:
            click.echo(f"re-queued {requeue(db, now=now)} failed deliveries")
        click.echo(deliver_pending(db, app.settings, now=now).render())


def _scope(ticker: str | None, source: str | None, tag: str | None, market: bool) -> tuple[str, str]:
    chosen = [(t, k) for t, k in (("ticker", ticker), ("source", source), ("tag", tag)) if k]
    if market:
        chosen.append(("market", ""))
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --ticker, --source, --tag or --market")
    kind, key = chosen[0]
    if kind == "ticker":
        from pipeline.trends.queries import normalise_ticker

        try:
            return kind, normalise_ticker(key)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--ticker") from None
    return kind, key.strip()


@alerts.command("list")
@click.option(
    "--all", "show_all", is_flag=True, help="Also resolved alerts (default: firing and last 7 days)."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Most alerts shown.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: alerts, silences, outbox.")
@click.pass_obj
def list_cmd(app, show_all: bool, limit: int, as_json: bool) -> None:
    """List alerts, active silences and the outbox (deliveries waiting, failed or unknown)."""
    import json

    from sqlalchemy import func, or_, select

    from pipeline.alerts.delivery import ATTENTION_STATES, UNKNOWN, UNKNOWN_ADVICE
    from pipeline.alerts.scopes import scope_text
    from pipeline.db.models import Alert, AlertDelivery, AlertSilence

    now = _utcnow()
    with app.database() as db, db.session() as s:
        query = select(Alert).order_by(Alert.started_at.desc(), Alert.id.desc()).limit(limit)
        if not show_all:
            query = query.where(or_(Alert.state == "firing", Alert.started_at >= now - timedelta(days=7)))
        rows = list(s.scalars(query))
        silences = list(
            s.scalars(select(AlertSilence).where(AlertSilence.ends_at > now).order_by(AlertSilence.ends_at))
        )
        counts = dict(
            s.execute(select(AlertDelivery.status, func.count()).group_by(AlertDelivery.status)).all()
        )
        open_deliveries = list(
            s.scalars(
                select(AlertDelivery)
                .where(AlertDelivery.status.in_(ATTENTION_STATES))
                .order_by(AlertDelivery.id)
            )
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "alerts": [
                        {
                            "id": a.id,
                            "state": a.state,
                            "scope_type": a.scope_type,
                            "scope_key": a.scope_key,
                            "started_at": a.started_at.isoformat(),
                            "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
                            "negative_share": a.negative_share,
                            "volume": a.volume,
                            "baseline_share": a.baseline_share,
                            "deviation": a.deviation,
                            "withdrawn": (a.details or {}).get("withdrawn"),
                        }
                        for a in rows
                    ],
                    "silences": [
                        {
                            "id": sil.id,
                            "scope_type": sil.scope_type,
                            "scope_key": sil.scope_key,
                            "ends_at": sil.ends_at.isoformat(),
                            "reason": sil.reason,
                        }
                        for sil in silences
                    ],
                    "outbox": {status: n for status, n in sorted(counts.items())},
                    "deliveries": [
                        {
                            "id": d.id,
                            "status": d.status,
                            "transport": d.transport,
                            "message_id": d.message_id,
                            "attempts": d.attempts,
                            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
                            "last_error": d.last_error,
                        }
                        for d in open_deliveries
                    ],
                },
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no alerts" + ("" if show_all else " in the last 7 days (--all for older)"))
    for a in rows:
        scope = scope_text(a.scope_type, a.scope_key)
        until = f" resolved {a.resolved_at:%Y-%m-%d %H:%M}" if a.resolved_at else ""
        if (a.details or {}).get("withdrawn"):
            until += " (withdrawn: " + a.details["withdrawn"] + ")"
        # Matched as the evaluation mutes: the same (scope type, key); the market's key is "".
        muted = [
            sil
            for sil in silences
            if (sil.scope_type, sil.scope_key) == (a.scope_type, a.scope_key) and sil.starts_at <= now
        ]
        if a.state == "firing" and muted:
            last = max(muted, key=lambda sil: sil.ends_at)
            until += f" (silenced until {last.ends_at:%Y-%m-%d %H:%M}Z by silence #{last.id})"
        click.echo(
            f"#{a.id:<5} {a.state:<8} {scope:<28} since {a.started_at:%Y-%m-%d %H:%M}Z{until}  "
            f"{a.negative_share:.0%} negative of {a.volume} "
            f"vs {a.baseline_share:.0%} (z={a.deviation:.1f})"
        )
    for sil in silences:
        scope = scope_text(sil.scope_type, sil.scope_key)
        reason = f" ({sil.reason})" if sil.reason else ""
        click.echo(f"silence #{sil.id}: {scope} until {sil.ends_at:%Y-%m-%d %H:%M}Z{reason}")
    if counts:
        click.echo("outbox: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    for d in open_deliveries:
        click.echo(
            f"  delivery #{d.id} {d.status} ({d.transport}) after {d.attempts} attempt(s): "
            f"{d.last_error or '-'}"
        )
        if d.status == UNKNOWN:
            click.echo(f"    Message-ID {d.message_id}: {UNKNOWN_ADVICE.replace('ID', str(d.id))}")


@alerts.command("silence")
@click.option("--ticker", help="Mute this ticker.")
@click.option("--source", help="Mute this source (feed name, or a feed id).")
@click.option("--tag", help="Mute this feed tag.")
@click.option("--market", is_flag=True, help="Mute the whole-market alert.")
@click.option("--until", "until", type=UtcDateTime(), help="End of the silence (ISO 8601, UTC if no zone).")
@click.option("--for", "duration", type=Duration(), help="Length of the silence instead of --until: 4h, 2d.")
@click.option("--reason", help="Why (shown by `finsent alerts list`).")
@click.pass_obj
def silence_cmd(
    app,
    ticker: str | None,
    source: str | None,
    tag: str | None,
    market: bool,
    until: datetime | None,
    duration: timedelta | None,
    reason: str | None,
) -> None:
    """Mute a scope's notifications until a time (detection goes on; no email is sent).

    --source takes the source's name as alerts show it (or a feed id from `finsent feeds
    list`); a key that matches nothing known is kept, with a warning naming the nearest ones.
    """
    from pipeline.alerts.scopes import scope_text
    from pipeline.alerts.silences import add_silence, check_future

    kind, key = _scope(ticker, source, tag, market)
    now = _utcnow()
    if (until is None) == (duration is None):
        raise click.UsageError("give exactly one of --until or --for")
    if duration is not None and duration <= timedelta(0):
        raise click.BadParameter(
            "a silence must last longer than 0: give e.g. 30m, 4h or 2d", param_hint="--for"
        )
    ends = until if until is not None else now + duration
    try:
        check_future(ends, now)  # before opening the database
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--until") from None
    with app.database() as db, db.transaction() as s:
        made = add_silence(s, kind, key, ends_at=ends, reason=reason, now=now, via="cli")
        if made.note:
            click.echo(made.note)
        if made.warning:
            click.echo(f"warning: {made.warning}", err=True)
    click.echo(
        f"silence #{made.silence_id}: {scope_text(kind, made.scope_key)}"
        + f" muted until {ends:%Y-%m-%d %H:%M}Z"
    )


@alerts.command("unsilence")
@click.argument("silence_ids", nargs=-1, type=int, required=True)
@click.pass_obj
def unsilence_cmd(app, silence_ids: tuple[int, ...]) -> None:
    """End silences now (by the ids `finsent alerts list` shows)."""
    from pipeline.alerts.silences import NoSuchSilence, end_silences

    now = _utcnow()
    with app.database() as db, db.transaction() as s:
        try:
            ended, over = end_silences(s, silence_ids, now=now)
        except NoSuchSilence as exc:
            raise click.BadParameter(str(exc)) from None
    click.echo(f"ended {len(ended)} silence(s)" + (" " + _ids(ended) if ended else ""))
    if over:
        click.echo(f"already over, left as they were: {_ids(over)}")


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


@alerts.command("test-email")
@click.option("--to", "to", multiple=True, help="Recipient (repeatable; default: FINSENT_ALERT_RECIPIENTS).")
@click.pass_obj
def test_email_cmd(app, to: tuple[str, ...]) -> None:
    """Send a sample alert email through the configured transport (outbox or SMTP)."""
    from pipeline.alerts.sample import send_test_email
    from pipeline.settings import is_email_address

    bad = [a for a in to if not is_email_address(a)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not an email address (use name@domain)", param_hint="--to")

    # Say which transport took it: "sent" to a file is not an SMTP server's acceptance.
    name, where = send_test_email(app.settings, list(to), now=_utcnow())
    click.echo(f"test email sent -> {where} (alert_transport {name})")


@alerts.command("test-webhook")
@click.pass_obj
def test_webhook_cmd(app) -> None:
    """Post a sample alert to FINSENT_WEBHOOK_URL (in FINSENT_WEBHOOK_FORMAT, signed with
    FINSENT_WEBHOOK_SECRET) and say what the receiver answered."""
    from pipeline.alerts.sample import send_test_webhook

    where = send_test_webhook(app.settings, now=_utcnow())
    click.echo(f"test webhook accepted -> {where}")
