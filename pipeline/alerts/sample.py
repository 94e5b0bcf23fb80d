"""A made-up alert for ``finsent alerts test-email``: checks transport, layout and chart."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from pipeline.alerts.content import build_message
from pipeline.alerts.evaluate import aware
from pipeline.alerts.queries import scope_sql
from pipeline.alerts.recipients import PLACEHOLDER_RECIPIENT
from pipeline.alerts.transport import make_transport
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
            }
        ],
        "chart": {"end": now.isoformat(), "step_minutes": 60, "volumes": volumes, "shares": shares},
        "sql": scope_sql(("ticker", "TEST"), start=now - timedelta(hours=1), end=now),
    }
    return {"evaluated_at": now.isoformat(), "items": [item], "test": True}


def send_test_email(settings: Settings, to: list[str], *, now: datetime) -> str:
    now = aware(now)
    recipients = to or list(settings.alert_recipients)
    transport = make_transport(settings)
    if not recipients:
        if transport.name == "smtp":
            raise AlertError(
                "no recipients: pass --to ADDRESS or set FINSENT_ALERT_RECIPIENTS", transient=False
            )
        recipients = [PLACEHOLDER_RECIPIENT]
    from_addr = getattr(getattr(transport, "params", None), "from_addr", None) or settings.smtp_from
    domain = from_addr.rsplit("@", 1)[-1].strip(">") if "@" in from_addr else "localhost"
    msg = build_message(
        sample_payload(now),
        message_id=f"<finsent.test.{secrets.token_hex(8)}@{domain}>",
        from_addr=from_addr,
        recipients=recipients,
        date=now,
    )
    return transport.send(msg, recipients, before_data=lambda: None)
