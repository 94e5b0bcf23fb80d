"""``webhook``: an HTTP POST of the alert as JSON, for Slack or Microsoft Teams incoming
webhooks or any receiver (``generic`` JSON, signed with HMAC-SHA256).

The outbox guarantees hold as for email: the request carries the delivery's stable id
(``X-FinSent-Delivery``, and ``id`` in generic JSON) so a receiver can drop a repeat;
connection failures, 5xx, 408 and 429 are retried with backoff (never sooner than the
``Retry-After`` the receiver asked for); other 4xx fail for good; a timeout or a lost
connection after the body was sent is an unknown outcome, never resent automatically.

Signature (generic format with ``FINSENT_WEBHOOK_SECRET``): ``X-FinSent-Signature:
sha256=<hex>``, the HMAC-SHA256 of ``<X-FinSent-Timestamp>.<raw body>`` with the secret; see
docs/alert-transports.md for a receiver that checks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit

from pipeline import __version__
from pipeline.alerts.content import scope_label
from pipeline.alerts.transports.base import Capabilities, OutcomeUnknown, Outgoing, RetryLater
from pipeline.alerts.transports.registry import register
from pipeline.errors import AlertError
from pipeline.ingest.normalise import one_plain_line

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)

FORMATS = ("generic", "slack", "teams")
RETRIED_STATUSES = frozenset({408, 429})
SIGNATURE_HEADER = "X-FinSent-Signature"
TIMESTAMP_HEADER = "X-FinSent-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The value of ``X-FinSent-Signature`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _headline_lines(item: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(" ".join(h["title"].split()), h.get("url")) for h in item.get("headlines", [])]


def _summary(item: dict[str, Any]) -> str:
    return (
        f"{item['negative_share']:.0%} negative of {item['volume']} articles vs "
        f"{item['baseline_share']:.0%} baseline (z={item['deviation']:.1f})"
    )


def generic_body(out: Outgoing) -> dict[str, Any]:
    return {
        "type": "finsent.alert",
        "id": out.message_id,
        "delivery_id": out.delivery_id,
        "subject": out.subject,
        "evaluated_at": out.payload.get("evaluated_at"),
        "test": bool(out.payload.get("test")),
        "items": out.items,
    }


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn: these three are control characters; a title must not make a link or mention.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    # Inside <url|text>, a ">" or "|" in the URL would end the link early and let what
    # follows be a mention (<!channel>) or a link text of the feed's choosing. Percent-
    # encoded, the URL still leads to the same page.
    return url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def slack_body(out: Outgoing) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": out.subject[:150]}}
    ]
    for item in out.items:
        lines = [f"*{_slack_escape(item['kind'].upper())}: {_slack_escape(scope_label(item))}*"]
        lines.append(_slack_escape(_summary(item)))
        for title, url in _headline_lines(item):
            safe = _slack_escape(title)
            linked = url and url.startswith(("http://", "https://"))
            lines.append(f"• <{_slack_url(url)}|{safe}>" if linked else f"• {safe}")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
    # The top-level text is mrkdwn too (the notification's): a source's name must not mention anyone.
    return {"text": _slack_escape(out.subject), "blocks": blocks}


def teams_body(out: Outgoing) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": out.subject, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    for item in out.items:
        body.append(
            {"type": "TextBlock", "text": f"{item['kind'].upper()}: {scope_label(item)}", "wrap": True}
        )
        body.append({"type": "TextBlock", "text": _summary(item), "wrap": True, "isSubtle": True})
        for title, _url in _headline_lines(item):
            # Plain text: Adaptive Cards would read Markdown in a title.
            body.append({"type": "TextBlock", "text": f"- {title}", "wrap": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "summary": out.subject,
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


_BODIES: dict[str, Callable[[Outgoing], dict[str, Any]]] = {
    "generic": generic_body,
    "slack": slack_body,
    "teams": teams_body,
}


def retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - (now or datetime.now(UTC)), timedelta(0))


@register
@dataclass
class WebhookTransport:
    url: str
    format: str = "generic"
    secret: str | None = None
    timeout_s: float = 10.0

    name: ClassVar[str] = "webhook"
    capabilities: ClassVar[Capabilities] = Capabilities()

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookTransport:
        if settings.webhook_url is None:
            raise AlertError(
                "alert_transport includes webhook but no URL is set: set FINSENT_WEBHOOK_URL",
                transient=False,
            )
        return cls(
            url=settings.webhook_url.get_secret_value(),
            format=settings.webhook_format,
            secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
            timeout_s=settings.webhook_timeout_s,
        )

    def location(self) -> str | None:
        return None

    @property
    def where(self) -> str:
        # Slack and Teams URLs carry their token in the path: show the host only.
        parts = urlsplit(self.url)
        return f"webhook {parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    def already_delivered(self, out: Outgoing) -> bool:
        return False  # a receiver cannot be asked; delivery's state machine decides

    def request(self, out: Outgoing) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(_BODIES[self.format](out), ensure_ascii=False, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"FinSent/{__version__}",
            "X-FinSent-Delivery": out.message_id,
        }
        parts = urlsplit(self.url)
        if parts.username is not None:
            # http.client sends no credentials of a URL's own: a receiver behind basic auth
            # (https://user:pass@host/hook) would refuse every alert with a 401.
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        if self.secret:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        return body, headers

    def send(self, out: Outgoing, *, before_handover: Callable[[], None]) -> str:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AlertError(f"{self.where}: FINSENT_WEBHOOK_URL must be an http(s) URL", transient=False)
        body, headers = self.request(out)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(parts.hostname, parts.port, timeout=self.timeout_s)
        handed_over = False
        try:
            conn.connect()
            before_handover()
            conn.request("POST", path, body=body, headers=headers)
            handed_over = True
            response = conn.getresponse()
            status, reason = response.status, response.reason
            wait = retry_after(response.getheader("Retry-After"))
            answer = response.read(65536)
        except (OSError, http.client.HTTPException) as exc:
            if handed_over:
                raise OutcomeUnknown(
                    f"{self.where}: no answer after the alert was sent ({type(exc).__name__}: {exc}); "
                    "it may have arrived"
                ) from None
            raise AlertError(f"{self.where} failed: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if 200 <= status < 300:
            return self.where
        message = f"{self.where} answered {status} {reason}".rstrip()
        # Slack and Teams say why in the body ("invalid_token", "no_service"): its start, on one line.
        said = one_plain_line(answer.decode("utf-8", "replace"))[:200]
        if said:
            message += f": {said!r}"
        if status >= 500 or status in RETRIED_STATUSES:
            raise RetryLater(message, retry_after=wait)
        raise AlertError(message + " (not retried: fix the URL or the receiver)", transient=False)
