"""The webhook transport against a real HTTP server on 127.0.0.1: formats, signature, retries,
unknown outcomes, once per alert across a crash and a retry, next to email."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alerts_helpers import NOW, add_burst, add_feed, add_history
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import select

import pipeline.alerts.delivery as delivery_mod
from pipeline.alerts.delivery import deliver_pending
from pipeline.alerts.evaluate import evaluate
from pipeline.alerts.transports.base import Outgoing
from pipeline.alerts.transports.webhook import WebhookTransport, retry_after, slack_body, teams_body
from pipeline.cli import cli
from pipeline.db.models import AlertDelivery

SECRET = "whsec-test-key"


@dataclass
class Hook:
    """An HTTP server whose answer to each POST is scripted: an int status (``(status,
    headers)``), or ``stall`` (read the body, answer 200 after the client's timeout)."""

    script: list = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    stall_s: float = 1.5
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/secret-token"

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@contextmanager
def webhook_server(*script) -> Iterator[Hook]:
    hook = Hook(script=list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.requests.append(({k: v for k, v in self.headers.items()}, body))
            step = hook.script.pop(0) if hook.script else 200
            if step == "stall":
                time.sleep(hook.stall_s)
                step = 200
            status, headers = step if isinstance(step, tuple) else (step, {})
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def _settings(settings, hook: Hook, **extra):
    return settings.model_copy(
        update={
            "alert_transport": "webhook",
            "webhook_url": SecretStr(hook.url),
            "webhook_secret": SecretStr(SECRET),
            "webhook_timeout_s": 0.5,
            **extra,
        }
    )


def _spike(db, settings, title: str = "Bad news") -> None:
    with db.transaction() as s:
        feed = add_feed(s, "Wire")
        add_history(s, feed, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, feed, ticker="ACME", end=NOW, count=12, negatives=10, title=title)
    evaluate(db, settings, now=NOW)


def _rows(db) -> list[AlertDelivery]:
    with db.session() as s:
        return list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


@pytest.mark.slow
def test_generic_json_is_signed_and_carries_the_delivery_id(db, settings):
    with webhook_server() as hook:
        s = _settings(settings, hook)
        _spike(db, s)
        report = deliver_pending(db, s, now=NOW)
    assert len(report.sent) == 1 and report.sent[0].where == f"webhook http://127.0.0.1:{hook.port}"
    assert "secret-token" not in report.render()
    ((headers, body),) = hook.requests
    (row,) = _rows(db)
    assert row.status == "sent" and row.transport == "webhook" and row.recipients == []
    assert headers["X-FinSent-Delivery"] == row.message_id
    expected = hmac.new(
        SECRET.encode(), headers["X-FinSent-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["X-FinSent-Signature"], "sha256=" + expected)
    data = json.loads(body)
    assert data["type"] == "finsent.alert" and data["id"] == row.message_id
    assert data["subject"].startswith("[FinSent] NEGATIVE spike: ACME")
    assert [i["scope_key"] for i in data["items"]] == ["ACME"]


@pytest.mark.slow
def test_slack_and_teams_formats_and_hostile_titles(db, settings):
    hostile = "<!channel> <https://evil.example|click> & co\r\nBcc: x@evil.example"
    with webhook_server() as hook:
        slack = _settings(settings, hook, webhook_format="slack", alert_transport="webhook")
        _spike(db, slack, title=hostile)
        assert len(deliver_pending(db, slack, now=NOW).sent) == 1
        teams = _settings(settings, hook, webhook_format="teams")
        with db.transaction() as s:
            row = s.get(AlertDelivery, 1)
            row.status, row.next_attempt_at, row.message_id = "pending", NOW, None
        assert len(deliver_pending(db, teams, now=NOW).sent) == 1
    slack_body, teams_body = hook.bodies
    assert slack_body["text"].startswith("[FinSent] NEGATIVE spike")
    section = slack_body["blocks"][1]["text"]["text"]
    assert "<!channel>" not in section and "&lt;!channel&gt;" in section and "&amp; co" in section
    assert "\r" not in section and "Bcc: x@evil.example" in section  # shown as data on one line
    card = teams_body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = [b["text"] for b in card["content"]["body"]]
    assert texts[0].startswith("[FinSent] NEGATIVE spike") and any("<!channel>" in t for t in texts)


@pytest.mark.slow
def test_5xx_408_429_are_retried_honouring_retry_after_and_other_4xx_fail(db, settings):
    with webhook_server((503, {"Retry-After": "300"}), 408, (429, {"Retry-After": "1"}), 200) as hook:
        s = _settings(settings, hook)
        _spike(db, s)
        first = deliver_pending(db, s, now=NOW)
        (row,) = _rows(db)
        assert "503" in first.failed[0][1] and row.status == "pending"
        assert row.next_attempt_at == NOW + timedelta(seconds=300)  # later than our 1 min backoff
        deliver_pending(db, s, now=NOW + timedelta(minutes=5))  # 408
        deliver_pending(db, s, now=NOW + timedelta(minutes=10))  # 429
        assert _rows(db)[0].status == "pending"
        done = deliver_pending(db, s, now=NOW + timedelta(hours=1))
        assert len(done.sent) == 1 and len(hook.requests) == 4
        assert len({h["X-FinSent-Delivery"] for h, _ in hook.requests}) == 1

    with webhook_server(404) as hook:
        s = _settings(settings, hook)
        with db.transaction() as ses:
            row = ses.get(AlertDelivery, 1)
            row.status, row.next_attempt_at = "pending", NOW
        gone = deliver_pending(db, s, now=NOW)
        assert gone.gave_up == [1] and "404" in gone.failed[0][1] and _rows(db)[0].status == "failed"
        assert deliver_pending(db, s, now=NOW + timedelta(days=1)).failed == [] and len(hook.requests) == 1


@pytest.mark.slow
def test_a_timeout_after_the_body_was_sent_is_unknown_and_never_resent(db, settings):
    with webhook_server("stall") as hook:
        s = _settings(settings, hook)
        _spike(db, s)
        first = deliver_pending(db, s, now=NOW)
        assert first.sent == [] and [i for i, _ in first.unknown] == [1]
        assert _rows(db)[0].status == "unknown"
        assert deliver_pending(db, s, now=NOW + timedelta(days=1)).unknown == []
        time.sleep(hook.stall_s)
        assert len(hook.requests) == 1


@pytest.mark.slow
def test_once_per_alert_across_a_crash_and_a_retry(db, settings, monkeypatch):
    with webhook_server(502) as hook:
        s = _settings(settings, hook)
        _spike(db, s)
        assert len(deliver_pending(db, s, now=NOW).failed) == 1  # a retry: nothing delivered

        def crash(*args, **kwargs):
            raise SystemExit("killed right after the receiver answered 200")

        with monkeypatch.context() as m:
            m.setattr(delivery_mod, "_mark_sent", crash)
            with pytest.raises(SystemExit):
                deliver_pending(db, s, now=NOW + timedelta(minutes=2))
        assert len(hook.requests) == 2 and _rows(db)[0].status == "transmitting"
        # After the lease: reported unknown, never posted again.
        later = deliver_pending(db, s, now=NOW + timedelta(hours=2))
        assert later.sent == [] and [i for i, _ in later.unknown] == [1]
        assert deliver_pending(db, s, now=NOW + timedelta(days=1)).unknown == []
        assert len(hook.requests) == 2  # the 502 and the one that arrived


@pytest.mark.slow
def test_email_and_webhook_at_once_each_get_the_alert_once(db, settings):
    with webhook_server() as hook:
        s = _settings(settings, hook, alert_transport="outbox,webhook")
        _spike(db, s)
        assert evaluate(db, s, now=NOW).deliveries == 0  # the same evaluation again: nothing new
        report = deliver_pending(db, s, now=NOW)
        again = deliver_pending(db, s, now=NOW + timedelta(hours=1))
    assert len(report.sent) == 2 and again.sent == [] and report.transport == "outbox, webhook"
    assert sorted(r.transport for r in _rows(db)) == ["outbox", "webhook"]
    assert len(list(s.outbox_dir.glob("*.eml"))) == 1 and len(hook.requests) == 1


def test_transport_setting_is_a_list_and_the_secret_is_masked(tmp_path, database_url, monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("FINSENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    env = {
        "FINSENT_DATABASE_URL": database_url,
        "FINSENT_DATA_DIR": str(tmp_path / "data"),
        "FINSENT_ALERT_TRANSPORT": "smtp, webhook",
        "FINSENT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/very-secret-token",
        "FINSENT_WEBHOOK_SECRET": "hmac-key-never-shown",
        "FINSENT_WEBHOOK_FORMAT": "slack",
    }
    out = CliRunner().invoke(cli, ["config"], env=env)
    assert out.exit_code == 0, out.output
    assert "smtp,webhook" in out.output and "slack" in out.output
    assert "hmac-key-never-shown" not in out.output and "very-secret-token" not in out.output
    bad = CliRunner().invoke(cli, ["config"], env={**env, "FINSENT_ALERT_TRANSPORT": "smtp,pigeon"})
    assert bad.exit_code != 0 and "'pigeon'" in bad.output and "webhook" in bad.output


def test_retry_after_forms():
    assert retry_after("120") == timedelta(seconds=120)
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == timedelta(0)
    assert retry_after("soon") is None and retry_after(None) is None


def test_a_headline_url_cannot_end_the_slack_link_or_mention_anyone():
    # canonical_url encodes these at ingest; a URL stored before that must not either.
    item = {
        "kind": "firing",
        "scope_type": "ticker",
        "scope_key": "ACME",
        "company": "Acme Corp",
        "negative_share": 0.8,
        "baseline_share": 0.2,
        "volume": 12,
        "deviation": 4.0,
        "headlines": [
            {
                "title": "Acme <b>falls</b>",
                "url": "https://evil.example/x><!channel>|Click to verify your account",
            }
        ],
    }
    out = Outgoing(delivery_id=1, message_id="<m@x>", payload={"items": [item]}, recipients=[], date=NOW)
    section = slack_body(out)["blocks"][1]["text"]["text"]
    link = "<https://evil.example/x%3E%3C!channel%3E%7CClick to verify your account"
    assert f"• {link}|Acme &lt;b&gt;falls&lt;/b&gt;>" in section
    assert "<!channel>" not in section and section.count("|") == 1
    # The notification's top-level text is mrkdwn too: a company named "<!channel>" mentions no one.
    item["company"] = "<!channel> Acme"
    assert "<!channel>" not in slack_body(out)["text"] and "&lt;!channel&gt;" in slack_body(out)["text"]
    # Teams cards carry no links: the URL is not sent at all.
    assert "evil.example" not in json.dumps(teams_body(out))


def test_test_webhook_posts_a_signed_sample_and_says_what_the_receiver_answered(
    tmp_path, database_url, monkeypatch
):
    for key in [k for k in __import__("os").environ if k.startswith("FINSENT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    with webhook_server(200, 404) as hook:
        env = {
            "FINSENT_DATABASE_URL": database_url,
            "FINSENT_DATA_DIR": str(tmp_path / "data"),
            "FINSENT_WEBHOOK_URL": hook.url,
            "FINSENT_WEBHOOK_SECRET": SECRET,
        }
        ok = CliRunner().invoke(cli, ["alerts", "test-webhook"], env=env)
        refused = CliRunner().invoke(cli, ["alerts", "test-webhook"], env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("test webhook accepted -> ") and "secret-token" not in ok.output
    (body, _) = hook.bodies
    assert body["test"] is True and body["items"][0]["scope_key"] == "TEST"
    headers, _ = hook.requests[0]
    assert any(k.lower() == "x-finsent-signature" for k in headers)
    assert (
        refused.exit_code == 1
        and "answered 404 Not Found: 'ok'" in refused.output  # the start of its body too
        and "secret-token" not in refused.output
    )
    unset = CliRunner().invoke(cli, ["alerts", "test-webhook"], env={**env, "FINSENT_WEBHOOK_URL": ""})
    assert unset.exit_code == 1 and "FINSENT_WEBHOOK_URL is not set" in unset.output


def test_a_webhook_url_with_a_login_sends_it_as_basic_auth(db, settings):
    with webhook_server(200) as hook:
        url = hook.url.replace("http://", "http://alerts:p%40ss@")
        transport = WebhookTransport.from_settings(
            settings.model_copy(update={"webhook_url": SecretStr(url), "webhook_timeout_s": 0.5})
        )
        where = transport.send(
            Outgoing(delivery_id=1, message_id="<m@x>", payload={"items": []}, recipients=[], date=NOW),
            before_handover=lambda: None,
        )
    headers, _ = hook.requests[0]
    auth = {k.lower(): v for k, v in headers.items()}["authorization"]
    assert auth == "Basic " + __import__("base64").b64encode(b"alerts:p@ss").decode()
    assert "p%40ss" not in where and "alerts" not in where
