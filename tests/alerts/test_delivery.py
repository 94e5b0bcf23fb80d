"""Delivery against a real SMTP server on 127.0.0.1 and the .eml outbox: once, never lost."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alerts_helpers import (
    NOW,
    SmtpServer,
    add_burst,
    add_feed,
    add_history,
    running_smtp_server,
    self_signed_tls,
)
from pydantic import SecretStr
from sqlalchemy import select

import pipeline.alerts.delivery as delivery_mod
from pipeline.alerts.delivery import MAX_ATTEMPTS, deliver_pending, mark_sent, resend, retry_failed
from pipeline.alerts.evaluate import evaluate
from pipeline.alerts.transports import Outgoing
from pipeline.alerts.transports.outbox import OutboxTransport, eml_name
from pipeline.alerts.transports.smtp import SmtpTransport, smtp_params
from pipeline.db.models import AlertDelivery
from pipeline.errors import AlertError


def _spike(db, settings, ticker: str = "ACME") -> None:
    with db.transaction() as s:
        feed = add_feed(s, f"Wire {ticker}")
        add_history(s, feed, ticker=ticker, end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, feed, ticker=ticker, end=NOW, count=12, negatives=10)
    assert evaluate(db, settings, now=NOW).deliveries == 1


def _rows(db) -> list[AlertDelivery]:
    with db.session() as s:
        return list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def smtp_settings(settings, smtp_server: SmtpServer):
    return settings.model_copy(
        update={
            "alert_transport": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_server.port,
            "smtp_security": "none",
            "smtp_timeout_s": 5.0,
            "alert_recipients": ["desk@example.com"],
        }
    )


def test_sends_once_over_smtp(db, smtp_settings, smtp_server):
    _spike(db, smtp_settings)

    report = deliver_pending(db, smtp_settings, now=NOW)
    again = deliver_pending(db, smtp_settings, now=NOW + timedelta(hours=3))

    assert len(report.sent) == 1 and again.sent == []
    (received,) = smtp_server.received
    assert received.rcpt_tos == ["desk@example.com"]
    msg = received.message
    assert msg["Subject"].startswith("[FinSent] NEGATIVE spike: ACME (ticker) 83% negative vs 25% baseline")
    (row,) = _rows(db)
    assert (row.status, row.attempts, row.message_id) == ("sent", 1, msg["Message-ID"])
    # Sent at the wall clock (the run's logical time NOW lies in the past): never before
    # the delivery row existed.
    assert row.sent_at >= row.created_at and row.sent_at > NOW


@pytest.mark.slow
def test_failed_send_stays_pending_and_is_retried_when_the_server_is_back(db, smtp_settings, smtp_server):
    _spike(db, smtp_settings)
    smtp_server.stop()

    down = deliver_pending(db, smtp_settings, now=NOW)
    (row,) = _rows(db)
    assert len(down.failed) == 1 and down.sent == []
    assert row.status == "pending" and row.attempts == 1 and "refused" in row.last_error.lower()
    assert row.next_attempt_at == NOW + timedelta(minutes=1)

    # Not due yet: nothing is tried.
    assert deliver_pending(db, smtp_settings, now=NOW + timedelta(seconds=30)).failed == []
    # Still down: backoff doubles.
    deliver_pending(db, smtp_settings, now=NOW + timedelta(minutes=1))
    assert _rows(db)[0].next_attempt_at == NOW + timedelta(minutes=3)

    smtp_server.start()
    back = deliver_pending(db, smtp_settings, now=NOW + timedelta(minutes=5))
    assert len(back.sent) == 1
    assert len(smtp_server.received) == 1
    (row,) = _rows(db)
    assert row.status == "sent" and row.attempts == 3


@pytest.mark.slow
def test_crash_between_send_and_commit_does_not_send_twice(db, smtp_settings, smtp_server, monkeypatch):
    _spike(db, smtp_settings)

    def crash(*args, **kwargs):
        raise SystemExit("killed right after the server accepted the message")

    with monkeypatch.context() as m:
        m.setattr(delivery_mod, "_mark_sent", crash)
        with pytest.raises(SystemExit):
            deliver_pending(db, smtp_settings, now=NOW)
    assert len(smtp_server.received) == 1
    assert _rows(db)[0].status == "transmitting"

    # Within the lease nobody touches it; after it, it is reported unknown: neither resent
    # nor claimed delivered (an SMTP server cannot be asked).
    assert deliver_pending(db, smtp_settings, now=NOW + timedelta(minutes=1)).sent == []
    retry = deliver_pending(db, smtp_settings, now=NOW + timedelta(hours=1))
    assert retry.sent == [] and [i for i, _ in retry.unknown] == [1] and "unknown" in retry.render()
    assert len(smtp_server.received) == 1
    (row,) = _rows(db)
    assert row.status == "unknown" and row.next_attempt_at is None and "unknown" in row.last_error
    assert deliver_pending(db, smtp_settings, now=NOW + timedelta(days=2)).unknown == []

    # The operator decides: resend (same Message-ID) or mark it delivered.
    assert resend(db, [1], now=NOW + timedelta(days=2)) == [1]
    again = deliver_pending(db, smtp_settings, now=NOW + timedelta(days=2))
    assert len(again.sent) == 1
    assert smtp_server.message_ids == [row.message_id, row.message_id]


@pytest.mark.slow
def test_crash_before_the_message_is_handed_over_resends_it(db, smtp_settings, smtp_server, monkeypatch):
    _spike(db, smtp_settings)
    from pipeline.alerts.transports import smtp as transport_mod

    def crash(self, *args, **kwargs):
        raise SystemExit("killed while connecting")

    with monkeypatch.context() as m:
        m.setattr(transport_mod.SmtpTransport, "_connect", crash)
        with pytest.raises(SystemExit):
            deliver_pending(db, smtp_settings, now=NOW)
    assert _rows(db)[0].status == "sending" and smtp_server.received == []

    retry = deliver_pending(db, smtp_settings, now=NOW + timedelta(hours=1))
    assert len(retry.sent) == 1 and len(smtp_server.received) == 1
    assert smtp_server.received[0].message["Message-ID"] == _rows(db)[0].message_id


@pytest.mark.slow
def test_outbox_writes_one_eml_per_message_and_survives_a_crash(db, settings, monkeypatch):
    _spike(db, settings)

    def crash(*args, **kwargs):
        raise SystemExit("killed after the rename")

    with monkeypatch.context() as m:
        m.setattr(delivery_mod, "_mark_sent", crash)
        with pytest.raises(SystemExit):
            deliver_pending(db, settings, now=NOW)
    files = sorted(settings.outbox_dir.glob("*.eml"))
    (row,) = _rows(db)
    assert [f.name for f in files] == [eml_name(row.message_id)]
    before = files[0].read_bytes()

    retry = deliver_pending(db, settings, now=NOW + timedelta(hours=1))
    assert [s.where for s in retry.sent] == ["(already delivered)"]
    assert sorted(settings.outbox_dir.glob("*")) == files and files[0].read_bytes() == before
    assert "outbox" in retry.render()
    assert _rows(db)[0].status == "sent"


@pytest.mark.slow
def test_gives_up_after_max_attempts_and_can_be_requeued(db, smtp_settings, smtp_server):
    _spike(db, smtp_settings)
    smtp_server.stop()
    with db.transaction() as s:
        s.get(AlertDelivery, 1).attempts = MAX_ATTEMPTS - 1
    report = deliver_pending(db, smtp_settings, now=NOW)
    assert report.gave_up == [1] and _rows(db)[0].status == "failed"
    assert deliver_pending(db, smtp_settings, now=NOW + timedelta(days=1)).failed == []

    smtp_server.start()
    assert retry_failed(db, now=NOW + timedelta(days=1)) == 1
    assert len(deliver_pending(db, smtp_settings, now=NOW + timedelta(days=1)).sent) == 1


def test_outbox_transport_paths(tmp_path):
    t = OutboxTransport(tmp_path)
    assert t.path_for("<a/b..c@x>").name == "a_b..c@x.eml"
    assert not t.already_delivered(Outgoing(1, "<nope@x>", {"items": []}, [], NOW))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI for a test certificate")
def test_starttls_with_login(db, settings, tmp_path):
    server_tls, client_tls = self_signed_tls(tmp_path)
    server = SmtpServer(tls_context=server_tls, login=("finsent", "s3cret"))
    server.start()
    try:
        base = settings.model_copy(
            update={
                "alert_transport": "smtp",
                "smtp_host": "127.0.0.1",
                "smtp_port": server.port,
                "smtp_security": "starttls",
                "smtp_user": "finsent",
                "smtp_timeout_s": 5.0,
                "alert_recipients": ["desk@example.com"],
            }
        )
        _spike(db, base)
        wrong = SmtpTransport(
            smtp_params(base.model_copy(update={"smtp_password": SecretStr("nope")})), ssl_context=client_tls
        )
        failed = deliver_pending(db, base, now=NOW, transport=wrong)
        assert len(failed.failed) == 1 and "535" in failed.failed[0][1]
        right = SmtpTransport(
            smtp_params(base.model_copy(update={"smtp_password": SecretStr("s3cret")})),
            ssl_context=client_tls,
        )
        sent = deliver_pending(db, base, now=NOW + timedelta(minutes=2), transport=right)
        assert len(sent.sent) == 1 and len(server.received) == 1
    finally:
        server.stop()


@pytest.mark.slow
def test_no_recipients_over_smtp_waits_for_configuration(db, smtp_settings, smtp_server):
    unconfigured = smtp_settings.model_copy(update={"alert_recipients": []})
    _spike(db, unconfigured)
    report = deliver_pending(db, unconfigured, now=NOW)
    assert "FINSENT_ALERT_RECIPIENTS" in report.failed[0][1] and smtp_server.received == []

    later = deliver_pending(db, smtp_settings, now=NOW + timedelta(hours=1))
    assert len(later.sent) == 1
    assert smtp_server.received[0].rcpt_tos == ["desk@example.com"]
    assert _rows(db)[0].recipients == ["desk@example.com"]


@pytest.mark.slow
def test_an_unrenderable_row_does_not_block_the_others(db, smtp_settings, smtp_server):
    _spike(db, smtp_settings, "ACME")
    with db.transaction() as s:
        s.get(AlertDelivery, 1).payload = {"items": "garbage"}
        s.get(AlertDelivery, 1).next_attempt_at = NOW - timedelta(minutes=1)
    _spike(db, smtp_settings, "BOLT")  # the next evaluation is idempotent per scope: BOLT is new

    report = deliver_pending(db, smtp_settings, now=NOW)

    assert [i for i, _ in report.failed] == [1] and "cannot render" in report.failed[0][1]
    assert len(report.sent) == 1 and "BOLT" in smtp_server.received[0].message["Subject"]


def test_operator_marks_an_unknown_delivery_sent_and_cannot_resend_a_sent_one(db, smtp_settings, smtp_server):
    _spike(db, smtp_settings)
    with db.transaction() as s:
        row = s.get(AlertDelivery, 1)
        row.status, row.message_id = "unknown", "<x@y>"
    with pytest.raises(AlertError, match="no delivery #7"):
        mark_sent(db, [7], now=NOW)
    assert mark_sent(db, [1], now=NOW) == [1]
    (row,) = _rows(db)
    assert row.status == "sent" and "operator" in row.last_error
    with pytest.raises(AlertError, match="delivery #1 is sent"):
        resend(db, [1], now=NOW)
    assert deliver_pending(db, smtp_settings, now=NOW + timedelta(days=1)).sent == []
    assert smtp_server.received == []
