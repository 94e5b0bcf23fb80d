"""The alert email: subject, plain-text and HTML parts, inline trend charts.

Rendering is a pure function of the delivery's frozen payload and its Message-ID, so a
retry sends the very same message. Everything that came from a feed (titles, URLs, source
names) is escaped for HTML and stripped of line breaks for headers.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from pipeline.alerts.chart import trend_png
from pipeline.masking import mask_secrets

_SAFE_URL = re.compile(r"^https?://", re.IGNORECASE)
_LINEBREAKS = re.compile(r"[\r\n\t]+")


def one_line(value: str) -> str:
    return _LINEBREAKS.sub(" ", value).strip()


def scope_label(item: dict[str, Any]) -> str:
    kind, key = item["scope_type"], item["scope_key"]
    if kind == "market":
        return "market"
    if kind == "ticker" and item.get("company"):
        return f"{item['company']} ({key})"
    return f"{mask_secrets(key)} ({kind})"  # a source without a name is its URL: no credentials


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _probability_pct(p: float) -> str:
    """A model's probability in whole percent, rounded down: 0.995 is "99%", as the web page's
    0.99, not "100%", which would claim a certainty the model did not give."""
    return f"{math.floor(p * 100 + 1e-9)}%"


def subject(items: list[dict[str, Any]]) -> str:
    alive = [i for i in items if i["kind"] != "resolved"]
    resolved = [i for i in items if i["kind"] == "resolved"]
    if len(items) == 1:
        i = items[0]
        if i["kind"] == "resolved" and i.get("resolved_because"):
            # Why it is calm, not the calm window's share (one article, 100% negative, read
            # like a worse spike than the one that fired).
            tail = ": " + i["resolved_because"][0]
        else:
            tail = f" {_pct(i['negative_share'])} negative vs {_pct(i['baseline_share'])} baseline"
        prefix = {"firing": "NEGATIVE spike", "repeat": "still NEGATIVE", "resolved": "RESOLVED"}[i["kind"]]
        text = f"[FinSent] {prefix}: {scope_label(i)}{tail}"
    elif alive:
        names = ", ".join(scope_label(i) for i in alive[:4]) + (" ..." if len(alive) > 4 else "")
        text = f"[FinSent] {len(alive)} NEGATIVE spikes: {names}"
        if resolved:
            text += f" (+{len(resolved)} resolved)"
    else:
        text = f"[FinSent] {len(resolved)} alerts RESOLVED: " + ", ".join(
            scope_label(i) for i in resolved[:4]
        )
    return one_line(text)


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def _threshold_share(item: dict[str, Any]) -> float:
    return max(item["min_share"], item["baseline_share"] + item["threshold"] * item["sigma"])


def _baseline_source(item: dict[str, Any]) -> str:
    """Where the baseline's level comes from, after its share."""
    if item["baseline_source"] == "history":
        return (
            f"± {item['baseline_spread']:.0%} (median of {item['baseline_periods']} periods, "
            f"{item['baseline_volume']} articles in {item['baseline_days']} days)"
        )
    if item["baseline_volume"]:
        return f"(short history: {item['baseline_volume']} articles, blended with a prior)"
    # Nothing to blend: the level is the prior alone (the market's level where the market has
    # history, else FINSENT_ALERT_PRIOR_NEGATIVE_SHARE).
    return "(no history yet: the prior, the market's level where it has one)"


def _numbers(item: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    if item["kind"] == "resolved" and item.get("resolved_because"):
        rows.append(("Resolved because", "; ".join(item["resolved_because"])))
    rows += [
        ("Window", f"{_when(item['window_start'])} – {_when(item['window_end'])}"),
        ("Negative share", f"{_pct(item['negative_share'])} of {item['volume']} novel articles"),
        ("Baseline", f"{_pct(item['baseline_share'])} {_baseline_source(item)}"),
        ("Deviation", f"{item['deviation']:.1f} σ (fires at {item['threshold']:g} σ)"),
        ("Firing since", _when(item["started_at"])),
    ]
    if item.get("excluded_tickers"):
        rows.append(("Not counted", "articles on firing tickers " + ", ".join(item["excluded_tickers"])))
    if item.get("model_version"):  # absent from payloads frozen before it was recorded
        rows.append(("Model", item["model_version"]))
    return rows


def headline_verdict(item: dict[str, Any], headline: dict[str, Any]) -> str:
    """How negative a headline is, and for whom: ``87% negative for VLTA`` (the company's own
    score), ``87% negative (whole article)`` (no company score: the article's stands in), or
    ``87% negative`` (aggregate scopes, and payloads frozen before company scores)."""
    verdict = f"{_probability_pct(headline['p_negative'])} negative"
    of = headline.get("label_of")
    if item.get("scope_type") != "ticker" or of is None:
        return verdict
    if of == "company":
        return f"{verdict} for {item['scope_key']}"
    return f"{verdict} (whole article)"


def correction_link(web_url: str | None, item: dict[str, Any], headline: dict[str, Any]) -> str | None:
    """The headline's row on the alert's page, where its correction form is (FINSENT_WEB_URL
    frozen in the payload); None without a web address or an article id."""
    article = headline.get("article_id")
    if not web_url or not isinstance(article, int) or not isinstance(item.get("alert_id"), int):
        return None
    return f"{web_url}alert/{item['alert_id']}#article-{article}"


def _text_item(item: dict[str, Any], web_url: str | None = None) -> str:
    head = {"firing": "NEGATIVE SPIKE", "repeat": "STILL FIRING", "resolved": "RESOLVED"}[item["kind"]]
    lines = [f"{head}: {scope_label(item)}", ""]
    lines += [f"  {k}: {v}" for k, v in _numbers(item)]
    if item["headlines"]:
        lines += ["", "  Top negative headlines:"]
        for h in item["headlines"]:
            lines.append(f"  - {one_line(h['title'])}")
            lines.append(f"    {h['source']}, {_when(h['published_at'])}, {headline_verdict(item, h)}")
            if h.get("url"):
                lines.append(f"    {h['url']}")
            link = correction_link(web_url, item, h)
            if link:
                lines.append(f"    Wrong label? {link}")
    lines += ["", "  SQL:", *("    " + line for line in item["sql"].splitlines())]
    return "\n".join(lines)


def _html_item(item: dict[str, Any], cid: str | None, web_url: str | None = None) -> str:
    e = html.escape
    color = "#1a7f37" if item["kind"] == "resolved" else "#cf222e"
    head = {"firing": "Negative spike", "repeat": "Still firing", "resolved": "Resolved"}[item["kind"]]
    parts = [
        f'<h2 style="color:{color};font-size:18px;margin:16px 0 4px">{e(head)}: {e(scope_label(item))}</h2>',
        '<table style="border-collapse:collapse;font-size:13px">',
        *(
            f'<tr><td style="padding:2px 12px 2px 0;color:#57606a">{e(k)}</td><td>{e(v)}</td></tr>'
            for k, v in _numbers(item)
        ),
        "</table>",
    ]
    if cid:
        parts.append(
            f'<p><img src="cid:{e(cid)}" alt="negative share, last days" width="640" height="240"></p>'
        )
    if item["headlines"]:
        parts.append('<h3 style="font-size:14px;margin:8px 0 4px">Top negative headlines</h3><ul>')
        for h in item["headlines"]:
            title = e(one_line(h["title"]))
            url = h.get("url") or ""
            linked = f'<a href="{e(url, quote=True)}">{title}</a>' if _SAFE_URL.match(url) else title
            link = correction_link(web_url, item, h)
            correct = f' · <a href="{e(link, quote=True)}">wrong label?</a>' if link else ""
            parts.append(
                f"<li>{linked}<br><small>{e(h['source'])} · {e(_when(h['published_at']))} · "
                f"{e(headline_verdict(item, h))}{correct}</small></li>"
            )
        parts.append("</ul>")
    parts.append(
        '<details><summary style="font-size:12px">SQL for this scope</summary>'
        f'<pre style="font-size:11px;background:#f6f8fa;padding:8px">{e(item["sql"])}</pre></details>'
    )
    return "\n".join(parts)


def email_domain(from_addr: str) -> str:
    """The domain of a From: address (for Message-IDs); localhost when it has none."""
    address = parseaddr(from_addr)[1]
    return address.rsplit("@", 1)[1] if "@" in address else "localhost"


def message_id_for(delivery_id: int, dedup_key: str, from_addr: str) -> str:
    """Deterministic: the same delivery always gets the same Message-ID."""
    return f"<finsent.alert.{delivery_id}.{dedup_key[:16]}@{email_domain(from_addr)}>"


def build_message(
    payload: dict[str, Any],
    *,
    message_id: str,
    from_addr: str,
    recipients: list[str],
    date: datetime,
) -> EmailMessage:
    items: list[dict[str, Any]] = payload["items"]
    msg = EmailMessage()
    title = subject(items)
    msg["Subject"] = title.replace("[FinSent]", "[FinSent TEST]", 1) if payload.get("test") else title
    msg["From"] = from_addr
    msg["To"] = ", ".join(formataddr(parseaddr(r)) for r in recipients)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["X-FinSent-Alerts"] = ", ".join(f"{i['alert_id']}:{i['kind']}" for i in items)
    intro = f"FinSent evaluated news sentiment at {_when(payload['evaluated_at'])}."
    web_url = payload.get("web_url")
    msg.set_content(intro + "\n\n" + "\n\n".join(_text_item(i, web_url) for i in items) + "\n")

    charts: list[tuple[str, bytes]] = []
    sections = []
    token = message_id.strip("<>").split("@")[0]
    for n, item in enumerate(items):
        cid = None
        if item["kind"] != "resolved" and item["chart"]["volumes"]:
            cid = f"chart{n}.{token}@finsent"
            charts.append(
                (
                    cid,
                    trend_png(
                        item["chart"], baseline=item["baseline_share"], threshold_share=_threshold_share(item)
                    ),
                )
            )
        sections.append(_html_item(item, cid, web_url))
    body = (
        '<html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328">'
        f"<p>{html.escape(intro)}</p>" + "\n<hr>\n".join(sections) + "</body></html>"
    )
    msg.add_alternative(body, subtype="html")
    html_part = msg.get_payload()[1]
    for cid, png in charts:
        # inline: shown in the HTML where its cid is; as an attachment mail clients list it too.
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            filename=f"{cid.split('.')[0]}.png",
            disposition="inline",
        )
    # Fixed boundaries: a retry of the same delivery produces the very same bytes.
    digest = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"==finsent-{n}-{digest}==")
    return msg
