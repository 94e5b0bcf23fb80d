"""A made-up alert for ``finsent alerts test-email`` and ``test-webhook``: checks the
transport, the layout and the chart before a real alert depends on them."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from pipeline.alerts.content import email_domain
from pipeline.alerts.evaluate import aware
from pipeline.alerts.queries import scope_sql
from pipeline.alerts.recipients import PLACEHOLDER_RECIPIENT
from pipeline.alerts.transports import Outgoing, email_transport, transport_class
from pipeline.errors import AlertError
from pipeline.settings import Settings


def sample_payload(now: datetime) -> dict[str, Any]:
    hours = 72
    shares = [round(0.15 + 0.08 * math.sin(i / 5), 3) for i in range(hours - 1)] + [0.8]
    volumes = [3 + (i * 7) % 5 for i in range(hours - 1)] + [15]
    item = {
        "alert_id": 0,
        "kind": "firing",
        "scope_type": "ticker",
        "scope_key": "TEST",
        "company": "Test Company <Example> & Co",
        "started_at": now.isoformat(),
        "window_start": (now - timedelta(hours=1)).isoformat(),
        "window_end": now.isoformat(),
        "window_minutes": 60,
        "threshold": 3.0,
        "min_volume": 5,
        "min_share": 0.4,
        "excluded_tickers": [],
        "volume": 15,
        "negative_share": 0.8,
        "baseline_share": 0.15,
        "baseline_spread": 0.06,
        "baseline_periods": 200,
        "baseline_days": 14,
        "baseline_volume": 900,
        "baseline_source": "history",
        "sigma": 0.1,
        "deviation": 6.5,
        "headlines": [
            {
                "article_id": 0,
                "title": "This is a test alert from FinSent <b>(not real news)</b>",
                "url": "https://example.com/finsent-test",
                "published_at": (now - timedelta(minutes=10)).isoformat(),
                "source": "FinSent",
                "p_negative": 0.97,
                "label": "negative",
                "label_of": "company",
            }
        ],
        "chart": {"end": now.isoformat(), "step_minutes": 60, "volumes": volumes, "shares": shares},
        "sql": scope_sql(("ticker", "TEST"), start=now - timedelta(hours=1), end=now),
    }
    return {"evaluated_at": now.isoformat(), "items": [item], "test": True}


def send_test_email(settings: Settings, to: list[str], *, now: datetime) -> tuple[str, str]:
    """Send the sample alert through the first configured email transport (outbox or SMTP);
    returns that transport's name and where the message went."""
    now = aware(now)
    recipients = to or list(settings.alert_recipients)
    transport = email_transport(settings)
    if transport is None:
        raise AlertError(
            f"alert_transport is {settings.alert_transport}: test-email needs an email transport "
            "(outbox or smtp) in FINSENT_ALERT_TRANSPORT",
            transient=False,
        )
    if not recipients:
        if transport.capabilities.requires_recipients:
            raise AlertError(
                "no recipients: pass --to ADDRESS or set FINSENT_ALERT_RECIPIENTS", transient=False
            )
        recipients = [PLACEHOLDER_RECIPIENT]
    out = Outgoing(
        0,
        f"<finsent.test.{secrets.token_hex(8)}@{email_domain(settings.smtp_from)}>",
        sample_payload(now),
        recipients,
        now,
    )
    return transport.name, transport.send(out, before_handover=lambda: None)


def send_test_webhook(settings: Settings, *, now: datetime) -> str:
    """Post the sample alert to FINSENT_WEBHOOK_URL in FINSENT_WEBHOOK_FORMAT (signed like a
    real one), whether or not FINSENT_ALERT_TRANSPORT lists webhook yet: a URL or receiver
    that refuses is found now, not when the first real alert is given up."""
    if settings.webhook_url is None:
        raise AlertError("FINSENT_WEBHOOK_URL is not set: set it to the receiver's URL", transient=False)
    transport = transport_class("webhook").from_settings(settings)
    out = Outgoing(0, f"<finsent.test.{secrets.token_hex(8)}@finsent>", sample_payload(aware(now)), [], now)
    return transport.send(out, before_handover=lambda: None)
