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
* ``withdrawn`` (set by :mod:`pipeline.alerts.withdraw`, from ``pending`` or ``failed`` only):
  its alert's articles were purged; final, never sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from pipeline.alerts.content import message_id_for
from pipeline.alerts.evaluate import aware
from pipeline.alerts.recipients import PLACEHOLDER_RECIPIENT
from pipeline.alerts.transports import (
    OutcomeUnknown,
    Outgoing,
    RetryLater,
    Transport,
    make_transports,
    transport_class,
    warn_unused_transports,
)
from pipeline.db.engine import Database
from pipeline.db.models import AlertDelivery
from pipeline.errors import AlertError, DatabaseError
from pipeline.settings import Settings

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 24  # about 18 hours of retries: 63 minutes to reach the cap, then 17 hourly
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
        retrying = sum(i not in self.gave_up for i, _ in self.failed)
        head = (
            f"delivery ({self.transport}): {len(self.sent)} sent, {retrying} failed"
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
    transports: list[Transport] | None = None,
) -> DeliveryReport:
    """Send every due outbox row (each in its own transactions); never raises for one bad send.

    Each row goes through the configured transport of its name; a row queued for an email
    transport that is no longer configured goes through the email transport configured now
    (switching from outbox to smtp sends what was queued). ``transport``/``transports``
    replace the configured ones (tests, ``alerts test-email``).
    """
    now = aware(now)
    if transport is not None:
        transports = [transport]
    if transports is None:
        # Before the due check: a server set up but not used is said at every run, not only
        # once an alert is due (by then it has gone to the outbox unread).
        warn_unused_transports(settings)
    names = list(settings.alert_transports) if transports is None else [t.name for t in transports]
    with db.session() as session:
        due = session.scalar(
            select(func.count())
            .select_from(AlertDelivery)
            .where(
                AlertDelivery.status.in_(OPEN_STATES),
                AlertDelivery.next_attempt_at <= now,
                AlertDelivery.transport.in_(_routable(names)),
            )
        )
    if transports is None:
        if not due:
            return _finish(db, DeliveryReport(settings.alert_transport, location=_location(settings, names)))
        transports = make_transports(settings)
    by_name = {t.name: t for t in transports}
    email = next((t for t in transports if t.capabilities.email), None)
    report = DeliveryReport(
        ", ".join(by_name), location=next((t.location() for t in transports if t.location()), None)
    )
    done = 0
    while limit is None or done < limit:
        claimed = _claim(db, now, settings, by_name, email)
        if claimed is None:
            break
        done += 1
        _deliver_one(db, settings, claimed.transport, claimed, now, report)
    return _finish(db, report)


def _routable(names: list[str]) -> list[str]:
    """Row transports that the configured ``names`` deliver: their own, and with an email
    transport configured, every email transport's (see :func:`deliver_pending`)."""
    classes = {n: transport_class(n) for n in names}
    if not any(c.capabilities.email for c in classes.values()):
        return names
    from pipeline.alerts.transports import transport_classes

    return sorted(set(names) | {n for n, c in transport_classes().items() if c.capabilities.email})


def _location(settings: Settings, names: list[str]) -> str | None:
    return str(settings.outbox_dir) if "outbox" in names else None


def _finish(db: Database, report: DeliveryReport) -> DeliveryReport:
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
    transport: Transport


def _claim(
    db: Database, now: datetime, settings: Settings, by_name: dict[str, Transport], email: Transport | None
) -> _Claim | None:
    with db.transaction() as session:
        row = session.scalars(
            select(AlertDelivery)
            .where(
                AlertDelivery.status.in_(OPEN_STATES),
                AlertDelivery.next_attempt_at <= now,
                AlertDelivery.transport.in_(_routable(list(by_name))),
            )
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        transport = by_name.get(row.transport) or email
        assert transport is not None  # _routable only lets through rows some transport takes
        previous = row.status
        if row.message_id is None:
            row.message_id = message_id_for(row.id, row.dedup_key, settings.smtp_from)
        row.attempts += 1
        row.status = "sending" if previous == "pending" else previous
        row.transport = transport.name
        row.next_attempt_at = now + max(LEASE, backoff(row.attempts))
        return _Claim(
            row.id,
            previous,
            row.attempts,
            row.message_id,
            list(row.recipients),
            dict(row.payload),
            transport,
        )


def _set(db: Database, delivery_id: int, **values: Any) -> None:
    with db.transaction() as session:
        session.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id).values(**values))


def _mark_sent(db: Database, delivery_id: int, now: datetime, note: str | None = None) -> None:
    # sent_at records when the message actually left, an audit fact: the wall clock, not the
    # run's logical time (which is earlier, and in a backfill much earlier, than the row's
    # created_at).
    sent = max(now, datetime.now(UTC))
    _set(db, delivery_id, status="sent", sent_at=sent, next_attempt_at=None, last_error=note)


def _recipients(db: Database, settings: Settings, transport: Transport, c: _Claim) -> list[str]:
    if not transport.capabilities.email or c.recipients != [PLACEHOLDER_RECIPIENT]:
        return c.recipients
    # Queued before any recipient was configured: use the defaults configured since.
    if settings.alert_recipients:
        _set(db, c.id, recipients=list(settings.alert_recipients))
        return list(settings.alert_recipients)
    if transport.capabilities.requires_recipients:
        raise AlertError(
            "no alert recipients configured: set FINSENT_ALERT_RECIPIENTS (the alert stays queued)"
        )
    return c.recipients


def _deliver_one(
    db: Database, settings: Settings, transport: Transport, c: _Claim, now: datetime, report: DeliveryReport
) -> None:
    subject = f"delivery #{c.id}"
    try:
        recipients = _recipients(db, settings, transport, c)
        out = Outgoing(c.id, c.message_id, c.payload, recipients, now)
        try:
            subject = out.subject
        except Exception as exc:  # one unrenderable row must not block the others
            log.exception("delivery #%s cannot be rendered", c.id)
            raise AlertError(
                f"cannot render the alert ({type(exc).__name__}: {exc}): report this bug"
            ) from None
        if transport.already_delivered(out):
            _mark_sent(db, c.id, now, "found already delivered on retry")
            report.sent.append(Sent(c.id, c.message_id, "(already delivered)", subject))
            return
        if c.previous_status == "transmitting" and not transport.capabilities.confirms_delivery:
            # Died between committing `transmitting` and recording the answer: an SMTP server
            # or a webhook cannot be asked whether the message arrived (the outbox was asked
            # above), so neither resend nor claim delivery.
            _unknown(db, c, CRASHED_NOTE, report)
            return
        try:
            where = transport.send(out, before_handover=lambda: _set(db, c.id, status="transmitting"))
        except (AlertError, DatabaseError):
            raise
        except Exception as exc:  # a renderer or transport bug: this row only
            log.exception("delivery #%s via %s failed unexpectedly", c.id, transport.name)
            raise AlertError(
                f"{transport.name}: unexpected {type(exc).__name__}: {exc} (a FinSent bug: report it)"
            ) from None
    except OutcomeUnknown as exc:
        _unknown(db, c, str(exc), report)
        return
    except RetryLater as exc:
        _failed(db, c, now, str(exc), report, retry_after=exc.retry_after)
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
    db: Database,
    c: _Claim,
    now: datetime,
    error: str,
    report: DeliveryReport,
    *,
    permanent: bool = False,
    retry_after: timedelta | None = None,
) -> None:
    if permanent or c.attempts >= MAX_ATTEMPTS:
        _set(db, c.id, status="failed", last_error=error, next_attempt_at=None)
        report.gave_up.append(c.id)
        log.error("delivery #%s given up after %s attempt(s): %s", c.id, c.attempts, error)
    else:
        # Never sooner than the receiver asked (HTTP Retry-After), never later than our cap.
        retry_at = now + max(backoff(c.attempts), min(retry_after or timedelta(0), BACKOFF_MAX))
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
