"""Sending the outbox rows: each notification at most once, none lost, no outcome guessed.

A delivery row moves ``pending -> sending -> transmitting -> sent``, each step committed
on its own before the next side effect:

* ``sending`` (claimed with ``FOR UPDATE SKIP LOCKED``): attempts counted, the Message-ID
  fixed (deterministic, stored, the same for every attempt and every resend), and
  ``next_attempt_at`` pushed out as a lease so a parallel worker leaves it alone. A crash
  here or while connecting / logging in / giving the envelope leaves ``sending``: the next
  run sends it again, which is safe because the server never got the message.
* ``transmitting``: committed just before the body is handed over (after SMTP's 354 reply
  to DATA, before the message and its end-of-data; before an HTTP request's body; before the
  outbox file is written).
* ``unknown``: the body was handed over and no answer came (a timeout or a lost connection
  after SMTP's end-of-data or after an HTTP body), or the process died in ``transmitting``
  (found by the next run after the lease). The server may have stored the message: FinSent
  never resends it on its own and never claims it was delivered. ``finsent alerts list``
  shows it; the operator checks the mailbox (the Message-ID is listed) and runs ``finsent
  alerts deliver --resend ID`` (back to ``pending``, same Message-ID, so a mail client or
  webhook receiver that de-duplicates by it shows one) or ``--mark-sent ID``. A transport
  that can look (the outbox: a file named after the Message-ID exists or not) needs no
  operator: a claimed row it already holds is recorded as sent, one it lacks is written.
* A failure before the hand-over (server down, refused, timeout before end-of-data, a 4xx
  reply, HTTP 5xx/408/429) goes back to ``pending`` with exponential backoff (or the
  server's Retry-After, when later); after ``MAX_ATTEMPTS`` it becomes ``failed``. A
  permanent refusal (SMTP 5xx, HTTP 4xx other than 408/429) is ``failed`` at once. Failed
  rows are kept, listed by ``finsent alerts list`` and re-queued by ``finsent alerts deliver
  --retry-failed`` (or one by one with ``--resend ID``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from pipeline.alerts.content import build_message, message_id_for
from pipeline.alerts.evaluate import aware
from pipeline.alerts.recipients import PLACEHOLDER_RECIPIENT
from pipeline.alerts.transport import OutboxTransport, OutcomeUnknown, Transport, make_transport
from pipeline.db.engine import Database
from pipeline.db.models import AlertDelivery
from pipeline.errors import AlertError
from pipeline.settings import Settings

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 24  # about 19 hours of retries at the capped backoff
OPEN_STATES = ("pending", "sending", "transmitting")
UNKNOWN = "unknown"
#: Listed by ``finsent alerts list``: waiting to be sent, given up, or waiting for the operator.
ATTENTION_STATES = ("pending", "sending", "transmitting", "failed", UNKNOWN)
#: What the operator is told about a delivery in ``unknown``.
UNKNOWN_ADVICE = (
    "not resent: check the mailbox, then `finsent alerts deliver --resend ID` or `--mark-sent ID`"
)
CRASHED_NOTE = (
    "the process stopped while handing the message over, before any answer: it may or may "
    "not have arrived (unknown)"
)


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


@dataclass
class Sent:
    delivery_id: int
    message_id: str
    where: str
    subject: str
    note: str | None = None


@dataclass
class DeliveryReport:
    transport: str
    sent: list[Sent] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)
    unknown: list[tuple[int, str]] = field(default_factory=list)
    waiting: int = 0
    location: str | None = None

    def render(self) -> str:
        head = (
            f"delivery ({self.transport}): {len(self.sent)} sent, {len(self.failed)} failed"
            f" (will retry), {len(self.gave_up)} given up, {self.waiting} waiting"
        )
        if self.unknown:
            head += f", {len(self.unknown)} unknown ({UNKNOWN_ADVICE})"
        if self.location:
            head += f"; files in {self.location}"
        lines = [head]
        lines += [f"  sent     #{s.delivery_id} {s.subject} -> {s.where}" for s in self.sent]
        lines += [f"  failed   #{i} {err}" for i, err in self.failed if i not in self.gave_up]
        lines += [f"  gave up  #{i} {err}" for i, err in self.failed if i in self.gave_up]
        lines += [f"  unknown  #{i} {err}" for i, err in self.unknown]
        return "\n".join(lines)


def deliver_pending(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    transport: Transport | None = None,
    limit: int | None = None,
) -> DeliveryReport:
    """Send every due outbox row (each in its own transactions); never raises for one bad send."""
    now = aware(now)
    with db.session() as session:
        due = session.scalar(
            select(func.count())
            .select_from(AlertDelivery)
            .where(AlertDelivery.status.in_(OPEN_STATES), AlertDelivery.next_attempt_at <= now)
        )
    if transport is None:
        if not due:
            name = settings.alert_transport
            return _finish(db, DeliveryReport(name, location=_location(settings, name)), now)
        transport = make_transport(settings)
    report = DeliveryReport(transport.name, location=_location(settings, transport.name, transport))
    done = 0
    while limit is None or done < limit:
        claimed = _claim(db, now, settings, transport.name)
        if claimed is None:
            break
        done += 1
        _deliver_one(db, settings, transport, claimed, now, report)
    return _finish(db, report, now)


def _location(settings: Settings, name: str, transport: Transport | None = None) -> str | None:
    if isinstance(transport, OutboxTransport):
        return str(transport.directory)
    return str(settings.outbox_dir) if name == "outbox" else None


def _finish(db: Database, report: DeliveryReport, now: datetime) -> DeliveryReport:
    with db.session() as session:
        report.waiting = (
            session.scalar(
                select(func.count()).select_from(AlertDelivery).where(AlertDelivery.status.in_(OPEN_STATES))
            )
            or 0
        )
    return report


@dataclass
class _Claim:
    id: int
    previous_status: str
    attempts: int
    message_id: str
    recipients: list[str]
    payload: dict[str, Any]


def _claim(db: Database, now: datetime, settings: Settings, transport: str) -> _Claim | None:
    with db.transaction() as session:
        row = session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.status.in_(OPEN_STATES), AlertDelivery.next_attempt_at <= now)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        previous = row.status
        if row.message_id is None:
            row.message_id = message_id_for(row.id, row.dedup_key, settings.smtp_from)
        row.attempts += 1
        row.status = "sending" if previous == "pending" else previous
        row.transport = transport
        row.next_attempt_at = now + max(LEASE, backoff(row.attempts))
        return _Claim(row.id, previous, row.attempts, row.message_id, list(row.recipients), dict(row.payload))


def _set(db: Database, delivery_id: int, **values: Any) -> None:
    with db.transaction() as session:
        session.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id).values(**values))


def _mark_sent(db: Database, delivery_id: int, now: datetime, note: str | None = None) -> None:
    # sent_at records when the email actually left, an audit fact: the wall clock, not the
    # run's logical time (which is earlier, and in a backfill much earlier, than the row's
    # created_at).
    sent = max(now, datetime.now(UTC))
    _set(db, delivery_id, status="sent", sent_at=sent, next_attempt_at=None, last_error=note)


def _recipients(db: Database, settings: Settings, transport: Transport, c: _Claim) -> list[str]:
    if c.recipients != [PLACEHOLDER_RECIPIENT]:
        return c.recipients
    # Queued before any recipient was configured: use the defaults configured since.
    if settings.alert_recipients:
        _set(db, c.id, recipients=list(settings.alert_recipients))
        return list(settings.alert_recipients)
    if transport.name == "smtp":
        raise AlertError(
            "no alert recipients configured: set FINSENT_ALERT_RECIPIENTS (the alert stays queued)"
        )
    return c.recipients


def _deliver_one(
    db: Database, settings: Settings, transport: Transport, c: _Claim, now: datetime, report: DeliveryReport
) -> None:
    from_addr = getattr(getattr(transport, "params", None), "from_addr", None) or settings.smtp_from
    subject = f"delivery #{c.id}"
    try:
        recipients = _recipients(db, settings, transport, c)
        try:
            msg = build_message(
                c.payload, message_id=c.message_id, from_addr=from_addr, recipients=recipients, date=now
            )
        except Exception as exc:  # one unrenderable row must not block the others
            log.exception("delivery #%s cannot be rendered", c.id)
            raise AlertError(
                f"cannot render the email ({type(exc).__name__}: {exc}): report this bug"
            ) from None
        subject = str(msg["Subject"])
        if transport.already_delivered(c.message_id):
            _mark_sent(db, c.id, now, "found already delivered on retry")
            report.sent.append(Sent(c.id, c.message_id, "(already delivered)", subject))
            return
        if c.previous_status == "transmitting" and not getattr(transport, "confirms_delivery", False):
            # Died between committing `transmitting` and recording the answer: an SMTP server
            # or a webhook cannot be asked whether the message arrived (the outbox was asked
            # above), so neither resend nor claim delivery.
            _unknown(db, c, CRASHED_NOTE, report)
            return
        where = transport.send(msg, recipients, before_data=lambda: _set(db, c.id, status="transmitting"))
    except OutcomeUnknown as exc:
        _unknown(db, c, str(exc), report)
        return
    except AlertError as exc:
        _failed(db, c, now, str(exc), report, permanent=exc.terminal)
        return
    _mark_sent(db, c.id, now)
    report.sent.append(Sent(c.id, c.message_id, where, subject))
    log.info("delivery #%s sent: %s -> %s", c.id, subject, where)


def _unknown(db: Database, c: _Claim, reason: str, report: DeliveryReport) -> None:
    _set(db, c.id, status=UNKNOWN, last_error=reason, next_attempt_at=None)
    report.unknown.append((c.id, reason))
    log.error("delivery #%s (%s) outcome unknown, %s: %s", c.id, c.message_id, UNKNOWN_ADVICE, reason)


def _failed(
    db: Database, c: _Claim, now: datetime, error: str, report: DeliveryReport, *, permanent: bool = False
) -> None:
    if permanent or c.attempts >= MAX_ATTEMPTS:
        _set(db, c.id, status="failed", last_error=error, next_attempt_at=None)
        report.gave_up.append(c.id)
        log.error("delivery #%s given up after %s attempt(s): %s", c.id, c.attempts, error)
    else:
        retry_at = now + backoff(c.attempts)
        _set(db, c.id, status="pending", last_error=error, next_attempt_at=retry_at)
        log.warning("delivery #%s failed (attempt %s, retry after %s): %s", c.id, c.attempts, retry_at, error)
    report.failed.append((c.id, error))


def retry_failed(db: Database, *, now: datetime) -> int:
    """Re-queue deliveries that were given up (``finsent alerts deliver --retry-failed``)."""
    with db.transaction() as session:
        result = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=aware(now))
        )
        return result.rowcount or 0


def resend(db: Database, delivery_ids: list[int], *, now: datetime) -> list[int]:
    """Queue deliveries in ``unknown`` or ``failed`` again (``finsent alerts deliver --resend``).

    The row keeps its Message-ID, so the copy that may already have arrived and the new one
    are recognisably the same message. Raises for an id that is not in one of those states.
    """
    return _operator_move(
        db,
        delivery_ids,
        (UNKNOWN, "failed"),
        "resend",
        status="pending",
        next_attempt_at=aware(now),
        attempts=0,
    )


def mark_sent(db: Database, delivery_ids: list[int], *, now: datetime) -> list[int]:
    """Record deliveries in ``unknown`` as delivered (``finsent alerts deliver --mark-sent``)."""
    return _operator_move(
        db,
        delivery_ids,
        (UNKNOWN,),
        "mark-sent",
        status="sent",
        sent_at=aware(now),
        next_attempt_at=None,
        last_error="outcome was unknown; marked delivered by the operator",
    )


def _operator_move(
    db: Database, ids: list[int], allowed: tuple[str, ...], what: str, **values: Any
) -> list[int]:
    with db.transaction() as session:
        rows = {
            r.id: r
            for r in session.scalars(select(AlertDelivery).where(AlertDelivery.id.in_(ids)).with_for_update())
        }
        for i in ids:
            row = rows.get(i)
            if row is None:
                raise AlertError(f"no delivery #{i}: see `finsent alerts list`", transient=False)
            if row.status not in allowed:
                raise AlertError(
                    f"delivery #{i} is {row.status}; --{what} takes only "
                    + " or ".join(allowed)
                    + " deliveries (see `finsent alerts list`)",
                    transient=False,
                )
        session.execute(update(AlertDelivery).where(AlertDelivery.id.in_(ids)).values(**values))
    return sorted(rows)
