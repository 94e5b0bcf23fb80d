"""The alert email: parts, inline chart, escaping of everything that came from a feed."""

from __future__ import annotations

import copy
from email import message_from_bytes, policy

import pytest
from alerts_helpers import NOW

from pipeline.alerts.content import build_message, subject
from pipeline.alerts.sample import sample_payload

NASTY_TITLE = '<script>alert("x")</script> Acme & Sons "recall"\r\nBcc: victim@example.com'


def _parse(msg):
    return message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.default)


@pytest.fixture
def payload() -> dict:
    p = sample_payload(NOW)
    p.pop("test")
    item = p["items"][0]
    item["scope_key"] = "ACME"
    item["company"] = "Acme <Corp>\r\nX-Evil: 1"
    item["headlines"] = [
        {
            "article_id": 1,
            "title": NASTY_TITLE,
            "url": "javascript:alert(1)",
            "published_at": NOW.isoformat(),
            "source": "<b>Wire</b>",
            "p_negative": 0.93,
        },
        {
            "article_id": 2,
            "title": "Plain",
            "url": 'https://news.example.com/a?b=1&c="2"',
            "published_at": NOW.isoformat(),
            "source": "Wire",
            "p_negative": 0.9,
        },
    ]
    return p


def _build(payload, recipients=("desk@example.com",)):
    return build_message(
        payload,
        message_id="<finsent.alert.1.abc@example.com>",
        from_addr="FinSent <alerts@example.com>",
        recipients=list(recipients),
        date=NOW,
    )


def test_structure_text_html_and_inline_chart(payload):
    msg = _parse(_build(payload))
    types = [p.get_content_type() for p in msg.walk()]
    assert types == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    assert msg["Message-ID"] == "<finsent.alert.1.abc@example.com>"
    assert (
        msg["Subject"]
        == "[FinSent] NEGATIVE spike: Acme <Corp> X-Evil: 1 (ACME) 80% negative vs 15% baseline"
    )
    assert msg["X-Evil"] is None and msg["Bcc"] is None
    html = msg.get_body(("html",)).get_content()
    png = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    cid = png["Content-ID"].strip("<>")
    assert png.get_content_disposition() == "inline"  # not listed as an attachment
    assert f'src="cid:{cid}"' in html
    assert png.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    text = msg.get_body(("plain",)).get_content()
    for fragment in (
        "80% of 15 novel articles",
        "Baseline: 15%",
        "6.5 σ",
        "SELECT a.published_at",
        "93% negative",
    ):
        assert fragment in text


def test_feed_text_is_escaped_in_html(payload):
    html = _parse(_build(payload)).get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Wire</b>" not in html and "&lt;b&gt;Wire&lt;/b&gt;" in html
    assert "javascript:" not in html  # unsafe link: the title is shown without one
    assert 'href="https://news.example.com/a?b=1&amp;c=&quot;2&quot;"' in html
    assert "Acme &lt;Corp&gt;" in html


@pytest.mark.slow
def test_same_payload_same_message(payload):
    a = _build(copy.deepcopy(payload)).as_bytes()
    b = _build(copy.deepcopy(payload)).as_bytes()
    assert a == b


def test_grouped_subject_and_resolved_items_have_no_chart(payload):
    first = payload["items"][0]
    second = {
        **copy.deepcopy(first),
        "alert_id": 2,
        "scope_type": "source",
        "scope_key": "Wire",
        "company": None,
    }
    gone = {**copy.deepcopy(first), "alert_id": 3, "kind": "resolved", "scope_key": "OLD", "company": None}
    assert subject([first, second, gone]).startswith("[FinSent] 2 NEGATIVE spikes: ")
    assert subject([first, second, gone]).endswith("Wire (source) (+1 resolved)")
    assert subject([gone]).startswith("[FinSent] RESOLVED: OLD (ticker)")
    msg = _parse(_build({"evaluated_at": NOW.isoformat(), "items": [first, gone]}))
    assert sum(p.get_content_type() == "image/png" for p in msg.walk()) == 1
    assert "Resolved: OLD (ticker)" in msg.get_body(("html",)).get_content()


def test_a_resolved_email_says_why_it_is_calm(payload):
    """A window that resolved on volume (one article, negative) must not read like a worse
    spike: the subject and body give the reason, not the calm window's share."""
    gone = {
        **copy.deepcopy(payload["items"][0]),
        "kind": "resolved",
        "volume": 1,
        "negative_share": 1.0,
        "resolved_because": ["1 novel article in the window (calm below 2.5)"],
    }
    title = subject([gone])
    assert title.endswith("(ACME): 1 novel article in the window (calm below 2.5)")
    assert "100% negative" not in title
    msg = _parse(_build({"evaluated_at": NOW.isoformat(), "items": [gone]}))
    for part in (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()):
        assert "Resolved because" in part and "calm below 2.5" in part


def test_headlines_link_to_their_correction_form_when_the_web_address_is_set(payload):
    plain = _parse(_build(payload))
    assert "wrong label" not in plain.get_body(("html",)).get_content().lower()
    payload["web_url"] = "https://finsent.example.com/finsent/"
    msg = _parse(_build(payload))
    alert_id = payload["items"][0]["alert_id"]
    link = f"https://finsent.example.com/finsent/alert/{alert_id}#article-1"
    assert f'<a href="{link}">wrong label?</a>' in msg.get_body(("html",)).get_content()
    assert f"Wrong label? {link}" in msg.get_body(("plain",)).get_content()
    payload["items"][0]["headlines"][0]["article_id"] = '1"><script>'  # not an id: no link
    html = _parse(_build(payload)).get_body(("html",)).get_content()
    assert "#article-1" not in html and "<script>" not in html


def test_ticker_headlines_say_whose_label_they_are(payload):
    """A company score reads "for ACME"; the article's standing in reads "(whole article)";
    a payload frozen before company scores (no label_of) renders as it always did."""
    first, second = payload["items"][0]["headlines"]
    first["label_of"], second["label_of"] = "company", "article"
    msg = _parse(_build(payload))
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for part in (text, html):
        assert "93% negative for ACME" in part
        assert "90% negative (whole article)" in part
    del first["label_of"], second["label_of"]
    text = _parse(_build(payload)).get_body(("plain",)).get_content()
    assert any(line.endswith(", 93% negative") for line in text.splitlines())
    assert "for ACME" not in text and "whole article" not in text


def test_a_source_scope_named_by_its_url_shows_no_credentials():
    from pipeline.alerts.content import scope_label

    label = scope_label(
        {"scope_type": "source", "scope_key": "https://analyst:hunter2@feeds.example.com/rss"}
    )
    assert label == "https://analyst:***@feeds.example.com/rss (source)"


def test_a_baseline_with_no_history_says_it_is_the_prior_alone(payload):
    item = payload["items"][0]
    item.update(baseline_source="prior", baseline_volume=0)
    text = _parse(_build(payload)).get_body(("plain",)).get_content()
    assert "(no history yet: the prior, the market's level where it has one)" in text
    assert "blended" not in text
    item.update(baseline_volume=12)
    text = _parse(_build(payload)).get_body(("plain",)).get_content()
    assert "(short history: 12 articles, blended with a prior)" in text
