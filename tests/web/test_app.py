"""The pages over the demo: each answers, escapes what feeds send, links relatively, and a
silence set from an alert's page is the row `finsent alerts silence` writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import delete, select

from pipeline.db.models import Alert, AlertSilence, Feed

from .conftest import HOSTILE_SOURCE, HOSTILE_TITLE, NOW


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src", "action") and value is not None:
                self.urls.append(value)


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def vlta_alert(demo_db) -> Alert:
    with demo_db.session() as s:
        return s.scalars(select(Alert).where(Alert.scope_type == "ticker", Alert.scope_key == "VLTA")).one()


@pytest.mark.slow
def test_overview_is_served_at_the_root_with_alert_movers_and_chart(client, demo_db):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    alert = vlta_alert(demo_db)
    assert f'href="./alert/{alert.id}"' in html
    assert 'href="./company/VLTA"' in html  # firing alert and the "most negative today" row
    assert "Voltara" in html
    assert html.count("<svg") >= 2  # the market chart and a sparkline per source
    assert "MarketWire Financial News" in html
    # Under "most negative today", only companies more negative than their norm.
    movers = html[
        html.index("Most negative today") : html.index("</section>", html.index("Most negative today"))
    ]
    changes = re.findall(r'<td class="n">(-?[\d.]+)%</td>\s*<td class="n">[-\d.]+</td>\s*</tr>', movers)
    assert changes and all(float(c) > 0 for c in changes)


@pytest.mark.parametrize(
    "path",
    ["/", "/company/VLTA", "/company/VLTA?by=day", "/feeds", "/?days=30", "/companies", "/companies?days=30"],
)
def test_every_page_answers_with_relative_links_only(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.text[:500]
    for url in links(r.text):
        if url.startswith(("http://", "https://")):
            continue  # a headline's own link
        assert not url.startswith("/"), f"{path}: absolute link {url}"


@pytest.mark.parametrize(
    ("path", "back"),
    [
        ("/?page=999999", "?days=3&amp;page=1"),
        ("/feeds?page=999", "?page=1"),
        ("/companies?page=999", "?days=7&amp;page=1"),
        ("/company/VLTA?page=999", "?by=hour&amp;page=1"),
    ],
)
def test_a_page_past_the_end_says_so_and_links_to_the_first(client, path, back):
    html = client.get(path).text
    assert "is past the last one" in html and f'href="{back}"' in html
    assert "No alert is firing" not in html and "No feeds yet" not in html


def test_pages_carry_security_headers_and_are_not_cached(client):
    page = client.get("/company/VLTA")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "SAMEORIGIN"  # Airflow's UI frames the pages
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert page.headers["referrer-policy"] == "same-origin"
    missing = client.get("/company/NOSUCH")
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
    css = next(u for u in links(page.text) if u.endswith(".css"))
    style = client.get("/company/" + css)
    assert style.status_code == 200 and "no-store" not in style.headers.get("cache-control", "")
    assert style.headers["x-content-type-options"] == "nosniff"


def test_alert_page_shows_evidence_life_cycle_and_deliveries(client, demo_db):
    alert = vlta_alert(demo_db)
    r = client.get(f"/alert/{alert.id}")
    assert r.status_code == 200
    html = r.text
    assert f"{alert.window_start:%Y-%m-%d %H:%M}" in html and f"{alert.window_end:%Y-%m-%d %H:%M}" in html
    assert f"{100 * alert.baseline_share:.1f}%" in html
    assert f"{alert.deviation:.2f}" in html
    assert "fired" in html and "Deliveries" in html and "outbox" in html
    assert re.search(r"<td>#\d+</td><td>firing</td><td>sent</td>", html)
    for url in links(html):
        assert not url.startswith("/")


def test_the_fired_event_shows_the_numbers_it_fired_with(client, demo_db):
    alert = vlta_alert(demo_db)
    fired = alert.details["fired_with"]
    with demo_db.transaction() as s:  # later evaluations move the row's own numbers
        s.get(Alert, alert.id).negative_share, s.get(Alert, alert.id).volume = 0.123, 999
    try:
        html = client.get(f"/alert/{alert.id}").text
        assert f"{fired['negative_share']:.0%} negative of {fired['volume']}" in html
        assert "12% negative of 999" not in html.split("Life cycle")[-1].split("</table>")[0]
    finally:
        with demo_db.transaction() as s:
            s.get(Alert, alert.id).negative_share, s.get(Alert, alert.id).volume = (
                alert.negative_share,
                alert.volume,
            )


def test_the_evidence_is_first_what_the_email_carried_then_the_latest_evaluation(client, demo_db):
    alert = vlta_alert(demo_db)
    moved = timedelta(minutes=7)
    with demo_db.transaction() as s:  # a later evaluation while it fires moves the row
        row = s.get(Alert, alert.id)
        row.window_start, row.window_end = alert.window_start + moved, alert.window_end + moved
        row.negative_share, row.volume = 0.95, 20
    try:
        html = client.get(f"/alert/{alert.id}").text
        emailed = html.split('class="facts emailed"')[1].split("</table>")[0]
        latest = html.split('class="facts latest"')[1].split("</table>")[0]
        assert f"{alert.window_start:%Y-%m-%d %H:%M}" in emailed
        assert f"{100 * alert.negative_share:.1f}% of {alert.volume} articles" in emailed
        assert f"{alert.window_start + moved:%Y-%m-%d %H:%M}" in latest and "95.0% of 20 articles" in latest
        assert re.search(r"As delivery #\d+ carried it \(firing, sent\)", html)
    finally:
        with demo_db.transaction() as s:
            row = s.get(Alert, alert.id)
            row.window_start, row.window_end = alert.window_start, alert.window_end
            row.negative_share, row.volume = alert.negative_share, alert.volume


def test_company_page_lists_headlines_newest_first_with_scores_and_marks_the_episode(client):
    html = client.get("/company/vlta").text  # any case: tickers are normalised
    assert "Voltara" in html
    assert 'class="band"' in html  # the alert episode on the chart
    assert 'class="baseline"' in html
    times = re.findall(r"<td>(2026-11-\d\d \d\d:\d\d)</td>\s*<td>", html)
    assert times and times == sorted(times, reverse=True)
    assert '<span class="label negative">negative</span>' in html
    assert "0.90" in html
    # The page's norm and the alert's baseline differ: each says what it rests on.
    assert re.search(r"Norm \(30 days before today\): [\d.]+% negative of \d+ articles?", html)
    assert re.search(r"vs [\d.]+% baseline \(short history, blended with a prior\)", html)


def test_company_headlines_are_paginated(client):
    first = client.get("/company/VLTA").text
    assert 'rel="next" href="?by=hour&amp;page=2"' in first
    second = client.get("/company/VLTA?page=2")
    assert second.status_code == 200 and 'rel="prev"' in second.text


def test_hostile_titles_and_names_are_escaped(client):
    for html in (client.get("/company/VLTA").text, client.get("/").text, client.get("/feeds").text):
        assert "<script>" not in html and "<img src=x" not in html and "<b>Evil</b>" not in html
    company = client.get("/company/VLTA").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in company
    assert "&lt;b&gt;Evil&lt;/b&gt; Wire" in company
    assert 'href="javascript:' not in company  # a link that is not http(s) is shown as text
    assert HOSTILE_TITLE not in company and HOSTILE_SOURCE not in company


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [
        ("/company/VLTAA", "VLTA"),
        ("/company/VTLA", "VLTA"),
        ("/company/%3Cscript%3E", None),
        ("/company/" + "A" * 200, None),
        ("/company/VLTA%20OR%201=1", None),
        ("/company/..%2F..%2Fetc", None),
    ],
)
def test_unknown_or_malformed_ticker_is_a_404_with_did_you_mean(client, path, suggestion):
    r = client.get(path)
    assert r.status_code == 404
    assert "<script>" not in r.text
    if suggestion:
        assert "Did you mean" in r.text
        assert f'href="../company/{suggestion}"' in r.text


def test_a_universe_company_with_no_news_yet_is_told_apart_from_a_typo(demo_db):
    from fastapi.testclient import TestClient

    from pipeline.companies.universe import load_universe
    from pipeline.web import create_app

    app = create_app(demo_db, clock=lambda: NOW, universe=lambda: load_universe("sp500"))
    with TestClient(app) as c:
        r = c.get("/company/msft")
        assert r.status_code == 404
        assert "Microsoft (MSFT) is in the company universe, but no article has mentioned it yet." in r.text
        assert "No article has mentioned ZZQX" in c.get("/company/ZZQX").text


@pytest.mark.parametrize(("raw", "sentence"), [("vlta.", "VLTA."), ("VLTAX", "VLTAX.")])
def test_an_unknown_tickers_sentence_ends_with_one_period(client, raw, sentence):
    # A ticker may end with a dot (BRK.): it ends the sentence too, no second period.
    r = client.get(f"/company/{raw}")
    assert r.status_code == 404
    assert f"<p>No article has mentioned {sentence}</p>" in r.text and f"{sentence}." not in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/alert/999999",
        "/alert/abc",
        "/alert/-1",
        "/nope",
        "/company/VLTA/extra",
        "/?page=abc",
        "/feeds?page=-3",
        "/companies?days=abc&page=<b>",
        "/company/VLTA?page=x&by=<b>",
    ],
)
def test_bad_input_is_never_a_400_422_or_500(client, path):
    r = client.get(path)
    assert r.status_code in (200, 404), (path, r.status_code)


def test_search_box_goes_to_the_company_page(client):
    r = client.get("/company?ticker=vlta")
    assert r.status_code == 200 and "Voltara" in r.text
    for empty in ("/company?ticker=", "/company?ticker=%20", "/company", "/company/"):
        r = client.get(empty)
        assert r.status_code == 200 and "Market overview" in r.text, empty
    assert client.get("/company?ticker=%3Cb%3E").status_code == 404
    # A company's name finds it too (the demo's Voltara Motors is VLTA).
    for name in ("Voltara Motors", "voltara"):
        r = client.get("/company", params={"ticker": name}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "company/VLTA", name
    r = client.get("/company", params={"ticker": "no such company anywhere"})
    assert r.status_code == 404
    several = client.get("/company", params={"ticker": "line"})  # Brookline, Harborline, ...
    assert several.status_code == 404
    assert "Several companies&#39; names contain &#39;line&#39;" in several.text
    assert 'href="./company/BRKL"' in several.text  # the page is at /company: its root is ./


def test_companies_page_lists_every_company_with_news_busiest_first(client, demo_db):
    from sqlalchemy import text

    html = client.get("/companies").text
    assert 'href="./company/VLTA"' in html and "Voltara Motors" in html
    rows = re.findall(
        r'<a href="./company/([^"]+)">[^<]+</a></td>\s*<td>[^<]*</td>\s*<td class="n">(\d+)</td>', html
    )
    with demo_db.session() as s:  # the daily rollups over the 7 UTC days 14-20 Nov (today's included)
        expected = s.execute(
            text(
                "SELECT scope_key, sum(n_articles) FROM sentiment_daily WHERE scope_type = 'ticker'"
                " AND bucket >= :first_day AND bucket <= :now"
                " GROUP BY scope_key HAVING sum(n_articles) > 0"
                " ORDER BY sum(n_articles) DESC, scope_key LIMIT 25"
            ),
            {"first_day": datetime(2026, 11, 14, tzinfo=UTC), "now": NOW},
        ).all()
    assert [(t, int(n)) for t, n in rows] == [(t, int(n)) for t, n in expected]
    assert [int(n) for _, n in rows] == sorted((int(n) for _, n in rows), reverse=True)
    assert client.get("/companies?days=1").status_code == 200
    assert "<strong>30</strong>" in client.get("/companies?days=30").text


def test_an_alert_no_email_carried_lists_its_windows_top_headlines(client, market_alert):
    # No delivery: the page ranks the window's headlines itself (times come back as text).
    r = client.get(f"/alert/{market_alert}")
    assert r.status_code == 200
    assert re.search(r'<tr id="article-\d+"><td>2026-11-20 14:\d\d</td>', r.text)


def test_feeds_page_shows_each_feeds_health(client):
    html = client.get("/feeds").text
    assert "MarketWire Financial News" in html
    assert html.count("<tr") >= 6
    assert "ok" in html  # last fetch outcome of the demo feeds


def test_a_feed_urls_password_is_never_shown(client, demo_db):
    with demo_db.transaction() as session:
        session.add(Feed(url="https://analyst:hunter2secret@feeds.example.com/rss", name=None))
    try:
        for page in ("/feeds", "/"):
            html = client.get(page).text
            assert "hunter2secret" not in html
        assert "https://analyst:***@feeds.example.com/rss" in client.get("/feeds").text
    finally:
        with demo_db.transaction() as session:
            session.execute(delete(Feed).where(Feed.url.contains("hunter2secret")))


def test_static_stylesheet_is_vendored(client):
    r = client.get("/static/style.css")
    assert r.status_code == 200 and "svg" in r.text


def test_silence_form_adds_the_silence_the_command_would(client, demo_db):
    alert = vlta_alert(demo_db)
    page = client.get(f"/alert/{alert.id}").text
    assert f'action="{alert.id}/silence"' in page
    r = client.post(
        f"/alert/{alert.id}/silence",
        data={"duration": "4h", "reason": "<i>known</i> recall"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"../{alert.id}?silenced=")
    with demo_db.session() as s:
        (row,) = s.scalars(select(AlertSilence)).all()
    assert (row.scope_type, row.scope_key, row.reason) == ("ticker", "VLTA", "<i>known</i> recall")
    assert (row.ends_at - NOW).total_seconds() == 4 * 3600
    after = client.get(f"/alert/{alert.id}?silenced={row.id}").text
    assert f"Silence #{row.id} set" in after and "&lt;i&gt;known&lt;/i&gt;" in after
    # A made-up id in a link announces nothing.
    assert "set.</p>" not in client.get(f"/alert/{alert.id}?silenced={row.id + 99}").text


def test_silence_form_refuses_bad_lengths_missing_alerts_and_other_sites(client, demo_db):
    alert = vlta_alert(demo_db)
    before = _silences(demo_db)
    assert client.post(f"/alert/{alert.id}/silence", data={"duration": "forever"}).status_code == 400
    assert client.post("/alert/999999/silence", data={"duration": "4h"}).status_code == 404
    r = client.post(
        f"/alert/{alert.id}/silence", data={"duration": "4h"}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    big = client.post(f"/alert/{alert.id}/silence", data={"duration": "4h", "reason": "x" * 100_000})
    assert big.status_code in (400, 413)
    assert _silences(demo_db) == before


def _silences(demo_db) -> int:
    with demo_db.session() as s:
        return len(s.scalars(select(AlertSilence)).all())


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["", "/finsent", "/proxy/deep/finsent"])
def test_every_link_resolves_at_the_root_and_under_a_prefix(demo_db, prefix):
    """Crawl from the overview, mounted as Airflow mounts plugin apps: every link is a page."""
    from urllib.parse import urljoin, urlsplit

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from pipeline.web import create_app

    app = create_app(demo_db, clock=lambda: NOW)
    if prefix:
        host = FastAPI()
        host.mount(prefix, app)
        app = host
    start = f"{prefix}/"
    seen, queue = set(), [start]
    with TestClient(app) as client:
        while queue and len(seen) < 60:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            for url in links(r.text):
                if url.startswith(("http://", "https://")):
                    continue
                target = urlsplit(urljoin(f"http://testserver{path}", url))
                assert target.path.startswith(start), (path, url, target.path)
                if target.path.endswith(("/silence", "/correct", "/company")):
                    continue  # form actions (POST; the search box)
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    visited = {urlsplit(p).path.removeprefix(prefix) for p in seen}
    assert {"/", "/feeds", "/company/VLTA"} <= visited
    assert any(p.startswith("/alert/") for p in visited)
