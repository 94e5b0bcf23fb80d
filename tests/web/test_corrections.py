"""Corrections from the company and alert pages: stored for the page's company, one per
person, shown escaped, refused from other sites and for bad input."""

from __future__ import annotations

import copy
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from pipeline.db.models import AlertDelivery, AlertDeliveryItem, Article, Correction
from pipeline.web import create_app

from .conftest import HOSTILE_TITLE, NOW, UI_TOKEN
from .test_app import vlta_alert


def _article_id(demo_db, title: str) -> int:
    with demo_db.session() as s:
        return s.scalars(select(Article.id).where(Article.title == title)).one()


def _article_id_about(demo_db, ticker: str, not_ticker: str) -> int:
    """An article linked to ``ticker`` and not to ``not_ticker``."""
    from pipeline.db.models import ArticleEntity

    with demo_db.session() as s:
        about = select(ArticleEntity.article_id).where(ArticleEntity.ticker == ticker)
        other = select(ArticleEntity.article_id).where(ArticleEntity.ticker == not_ticker)
        return s.scalars(about.except_(other).limit(1)).one()


def _corrections(demo_db) -> list[Correction]:
    with demo_db.session() as s:
        return list(s.scalars(select(Correction).order_by(Correction.id)))


@pytest.fixture(autouse=True)
def _no_corrections(demo_db):
    yield
    with demo_db.transaction() as s:
        s.execute(delete(Correction))


@pytest.mark.slow
def test_company_page_offers_a_form_per_headline(client, demo_db):
    page = client.get("/company/VLTA").text
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    assert f'id="article-{hostile}"' in page
    assert 'action="VLTA/correct"' in page
    assert page.count('name="label" value="negative"') >= 2 and "for VLTA" in page


def test_a_correction_lands_in_the_table_and_on_the_page(client, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    who = '<b>Ann</b> "A" <ann@example.com>'
    r = client.post(
        "/company/vlta/correct",
        data={"article_id": str(hostile), "label": "neutral", "who": who, "page": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert re.fullmatch(rf"\.\./VLTA\?corrected=\d+&page=1#article-{hostile}", r.headers["location"])
    (row,) = _corrections(demo_db)
    assert (row.article_id, row.ticker, row.label, row.corrected_by) == (hostile, "VLTA", "neutral", who)
    assert (row.model_version, row.model_label) == ("web-keywords-v1", "negative")
    page = client.get(f"/company/VLTA?corrected={row.id}").text
    assert f"Correction #{row.id} saved" in page
    assert "saved:" not in client.get(f"/company/VLTA?corrected={row.id + 77}").text  # made up
    assert "saved:" not in client.get(f"/company/NRTH?corrected={row.id}").text  # another company's
    assert "<b>Ann</b>" not in page and "&lt;b&gt;Ann&lt;/b&gt;" in page  # shown, escaped
    assert 'value="&lt;b&gt;Ann&lt;/b&gt;' in page  # and remembered for the next form
    # A newer correction by the same person replaces theirs; another person's is kept.
    client.post("/company/VLTA/correct", data={"article_id": str(hostile), "label": "positive", "who": who})
    client.post("/company/VLTA/correct", data={"article_id": str(hostile), "label": "negative", "who": "bob"})
    rows = _corrections(demo_db)
    assert sorted((c.corrected_by, c.label) for c in rows) == [(who, "positive"), ("bob", "negative")]
    # The page shows the latest, and that the two disagree.
    row_html = client.get("/company/VLTA").text.split(f'id="article-{hostile}"')[1].split("</tr>")[0]
    assert "by bob" in row_html and "2 corrections: 1 positive, 1 negative" in row_html


def test_an_alert_pages_correction_is_for_the_alerts_company(client, demo_db):
    alert = vlta_alert(demo_db)
    page = client.get(f"/alert/{alert.id}").text
    ids = [int(i) for i in re.findall(r'name="article_id" value="(\d+)"', page)]
    assert ids and f'action="{alert.id}/correct"' in page
    r = client.post(
        f"/alert/{alert.id}/correct",
        data={"article_id": str(ids[0]), "label": "neutral", "who": "ann"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"../{alert.id}?corrected=")
    (row,) = _corrections(demo_db)
    assert (row.article_id, row.ticker, row.label) == (ids[0], "VLTA", "neutral")
    assert "by ann" in client.get(f"/alert/{alert.id}").text


def _listed(client, alert_id: int) -> list[int]:
    page = client.get(f"/alert/{alert_id}").text
    return [int(i) for i in re.findall(r'name="article_id" value="(\d+)"', page)]


def _article_before(demo_db, when) -> int:
    with demo_db.session() as s:
        return s.scalars(select(Article.id).where(Article.published_at < when).limit(1)).one()


def test_an_article_not_on_the_alert_is_404_and_stores_nothing(client, demo_db, market_alert):
    vlta = vlta_alert(demo_db)
    hostile = _article_id(demo_db, HOSTILE_TITLE)  # about VLTA, after the alert's email
    assert hostile not in _listed(client, vlta.id)
    earlier = _article_before(demo_db, vlta.window_start)
    assert earlier not in _listed(client, market_alert)
    cases = [
        (vlta.id, hostile),  # about the company, not among the headlines its email carried
        (vlta.id, _article_id_about(demo_db, "NRTH", "VLTA")),  # not about the company at all
        (market_alert, earlier),  # outside the market alert's window
    ]
    for alert_id, article in cases:
        r = client.post(
            f"/alert/{alert_id}/correct",
            data={"article_id": str(article), "label": "neutral", "who": "ann"},
            follow_redirects=False,
        )
        assert r.status_code == 404, (alert_id, article, r.status_code)
        assert f"There is no alert #{alert_id} or no such article on it" in r.text
    assert _corrections(demo_db) == []


def test_a_market_alerts_listed_article_takes_a_whole_article_correction(client, demo_db, market_alert):
    listed = _listed(client, market_alert)
    assert listed
    r = client.post(
        f"/alert/{market_alert}/correct",
        data={"article_id": str(listed[-1]), "label": "neutral", "who": "ann"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith(f"#article-{listed[-1]}")
    (row,) = _corrections(demo_db)
    assert (row.article_id, row.ticker) == (listed[-1], None)


def _correct_on_company_page(client, demo_db, article_id: int) -> int:
    r = client.post(
        "/company/VLTA/correct",
        data={"article_id": str(article_id), "label": "neutral", "who": "ann"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return max(c.id for c in _corrections(demo_db))


def test_an_alert_page_announces_only_a_correction_of_its_own_headlines(client, demo_db, market_alert):
    vlta = vlta_alert(demo_db)
    listed = _listed(client, vlta.id)
    own = _correct_on_company_page(client, demo_db, listed[0])  # VLTA, on the alert
    assert f"Correction #{own} saved" in client.get(f"/alert/{vlta.id}?corrected={own}").text
    # An article the alert does not list, though about its company.
    elsewhere = _correct_on_company_page(client, demo_db, _article_id(demo_db, HOSTILE_TITLE))
    assert "saved:" not in client.get(f"/alert/{vlta.id}?corrected={elsewhere}").text
    # A market alert's page corrects whole articles: a correction for VLTA is not one of its.
    assert listed[0] in _listed(client, market_alert)
    assert "saved:" not in client.get(f"/alert/{market_alert}?corrected={own}").text


def test_no_identity_header_is_trusted_unless_configured(client, demo_db):
    # Any client can send these: without a proxy configured to set one, the typed name counts.
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    r = client.post(
        "/company/VLTA/correct",
        data={"article_id": str(hostile), "label": "neutral", "who": "bob"},
        headers={"X-Forwarded-Email": "ann@example.com", "X-Forwarded-User": "ann", "Remote-User": "ann"},
    )
    assert r.status_code == 200
    assert [c.corrected_by for c in _corrections(demo_db)] == ["bob"]
    assert 'value="ann' not in client.get("/company/VLTA", headers={"Remote-User": "ann"}).text


def test_the_configured_proxy_header_names_who_and_no_other(demo_db):
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN, user_header="X-Forwarded-Email")
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    form = {"article_id": str(hostile), "label": "neutral", "who": "someone else"}
    with TestClient(app, headers={"Authorization": f"Bearer {UI_TOKEN}"}) as c:
        # Another identity header is not the proxy's: it does not override the configured one.
        headers = {"Remote-User": "mallory", "X-Forwarded-Email": "ann@example.com"}
        assert c.post("/company/VLTA/correct", data=form, headers=headers).status_code == 200
        assert 'value="ann@example.com"' in c.get("/company/VLTA", headers=headers).text
    assert [c.corrected_by for c in _corrections(demo_db)] == ["ann@example.com"]


def test_bad_corrections_are_refused_and_store_nothing(client, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    alert = vlta_alert(demo_db)
    good = {"article_id": str(hostile), "label": "neutral", "who": "ann"}
    cases = [
        ("/company/VLTA/correct", {**good, "label": "bearish"}, {}, 400),
        ("/company/VLTA/correct", {**good, "who": "  "}, {}, 400),
        ("/company/%3Cb%3E/correct", good, {}, 400),
        ("/company/VLTA/correct", {**good, "article_id": "999999999"}, {}, 404),
        ("/company/VLTA/correct", {**good, "article_id": "1; DROP TABLE corrections"}, {}, 404),
        ("/alert/999999/correct", good, {}, 404),
        # a company the article is not about, on its page or through the address
        ("/company/ZZZZ/correct", good, {}, 400),
        (
            "/company/NRTH/correct",
            {**good, "article_id": str(_article_id_about(demo_db, "VLTA", "NRTH"))},
            {},
            400,
        ),
        ("/company/VLTA/correct", good, {"Origin": "https://evil.example"}, 403),
        (f"/alert/{alert.id}/correct", good, {"Referer": "https://evil.example/page"}, 403),
    ]
    for path, data, headers, status in cases:
        r = client.post(path, data=data, headers=headers, follow_redirects=False)
        assert r.status_code == status, (path, data, headers, r.status_code)
    big = client.post("/company/VLTA/correct", data={**good, "who": "x" * 100_000})
    assert big.status_code in (400, 413)
    assert _corrections(demo_db) == []


def test_a_who_of_invisible_characters_is_refused_in_one_line(client, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    for who in ("\u200b", "\u202e\u200d"):
        r = client.post(
            "/company/VLTA/correct", data={"article_id": str(hostile), "label": "neutral", "who": who}
        )
        assert r.status_code == 400 and "has no visible character" in r.text
    assert _corrections(demo_db) == []
    r = client.post(
        "/company/VLTA/correct",
        data={"article_id": str(hostile), "label": "neutral", "who": "\u202eann"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.cookies.get("finsent_who") == "ann"
    assert [c.corrected_by for c in _corrections(demo_db)] == ["ann"]


def test_a_headline_an_earlier_email_carried_still_takes_its_correction(client, demo_db):
    """A page loaded before a repeat email (with other headlines) keeps working: its form's
    article was carried by an email about the alert."""
    vlta = vlta_alert(demo_db)
    first = _listed(client, vlta.id)
    with demo_db.transaction() as s:
        original = s.scalars(select(AlertDelivery).order_by(AlertDelivery.id)).first()
        payload = copy.deepcopy(original.payload)
        for item in payload["items"]:
            item["headlines"] = item["headlines"][:1]  # the repeat lists only the first
        repeat = AlertDelivery(
            alert_id=vlta.id,
            kind="repeat",
            dedup_key="test-repeat",
            transport="outbox",
            status="sent",
            payload=payload,
        )
        s.add(repeat)
        s.flush()
        s.add(AlertDeliveryItem(delivery_id=repeat.id, alert_id=vlta.id, kind="repeat"))
    try:
        assert _listed(client, vlta.id) == first[:1]
        r = client.post(
            f"/alert/{vlta.id}/correct",
            data={"article_id": str(first[-1]), "label": "neutral", "who": "ann"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        page = client.get(r.headers["location"].split("#")[0].replace("..", "/alert")).text
        assert re.search(r"Correction #\d+ saved", page)
    finally:
        with demo_db.transaction() as s:
            s.execute(delete(Correction))
            s.execute(delete(AlertDelivery).where(AlertDelivery.dedup_key == "test-repeat"))


def test_a_correction_without_article_id_is_400_naming_the_field(client, demo_db):
    for form in ({"label": "neutral", "who": "ann"}, {"article_id": " ", "label": "neutral", "who": "ann"}):
        r = client.post("/company/VLTA/correct", data=form)
        assert r.status_code == 400 and "names no article: post its number as article_id" in r.text
    assert _corrections(demo_db) == []


def test_a_long_bad_ticker_is_quoted_cut_short(client):
    typed = "x!" * 2000
    r = client.get(f"/company/{typed}")
    assert r.status_code == 404
    assert f"{typed[:40]}…&#39; is not a ticker" in r.text and typed[:41] not in r.text
    r = client.get(f"/alert/{'9' * 500}")
    assert r.status_code == 404 and f"There is no alert #{'9' * 40}…." in r.text


def test_the_who_cookie_is_scoped_and_flagged_as_the_session_cookie_is(demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN)
    headers = {"Authorization": f"Bearer {UI_TOKEN}"}
    with TestClient(app, base_url="https://testserver", headers=headers) as c:
        form = {"article_id": str(hostile), "label": "neutral", "who": "ann"}
        r = c.post("/company/VLTA/correct", data=form, follow_redirects=False)
        login = c.post("/login", data={"token": UI_TOKEN}, follow_redirects=False)
    who = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("finsent_who="))
    session = login.headers["set-cookie"]
    for flag in ("Path=/;", "Secure", "HttpOnly", "SameSite=strict"):
        assert flag in who and flag in session, (flag, who, session)


def _withdraw_form(page: str, article_id: int) -> str | None:
    """The correction id the headline's "withdraw" button posts, if it has one."""
    row = page.split(f'id="article-{article_id}"')[1].split("</tr>")[0]
    found = re.search(r'name="correction_id" value="(\d+)"', row)
    return found.group(1) if found else None


@pytest.fixture
def proxied(demo_db):
    """The app behind a proxy that names the user in X-Forwarded-Email."""
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN, user_header="X-Forwarded-Email")
    with TestClient(app, headers={"Authorization": f"Bearer {UI_TOKEN}"}) as c:
        yield c


ANN = {"X-Forwarded-Email": "Ann@example.com"}
BOB = {"X-Forwarded-Email": "bob@example.com"}


def test_the_author_withdraws_their_own_correction_and_no_one_elses(proxied, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    post = {"article_id": str(hostile), "page": "1"}
    proxied.post("/company/VLTA/correct", data={**post, "label": "neutral"}, headers=BOB)
    proxied.post("/company/VLTA/correct", data={**post, "label": "positive"}, headers=ANN)
    ann, bob = sorted(_corrections(demo_db), key=lambda c: c.corrected_by)
    # Each sees a button for their own only.
    assert _withdraw_form(proxied.get("/company/VLTA", headers=ANN).text, hostile) == str(ann.id)
    assert _withdraw_form(proxied.get("/company/VLTA", headers=BOB).text, hostile) == str(bob.id)
    assert "yours: positive" in proxied.get("/company/VLTA", headers=ANN).text
    # bob's cannot be withdrawn by ann, whatever her form says: refused in one line.
    r = proxied.post(
        "/company/VLTA/withdraw", data={"correction_id": str(bob.id), "who": "bob@example.com"}, headers=ANN
    )
    assert r.status_code == 403
    assert "was made by bob@example.com, not Ann@example.com" in r.text
    assert f"finsent feedback remove {bob.id}" in r.text
    # Another company's page, a made-up id: not on this page, nothing removed.
    form = {"correction_id": str(ann.id)}
    assert proxied.post("/company/NRTH/withdraw", data=form, headers=ANN).status_code == 404
    assert (
        proxied.post("/company/VLTA/withdraw", data={"correction_id": "99999"}, headers=ANN).status_code
        == 404
    )
    assert len(_corrections(demo_db)) == 2
    # Hers goes (the user in any case); the browser returns to the headline.
    r = proxied.post(
        "/company/VLTA/withdraw",
        data={**form, "page": "1"},
        headers={"X-Forwarded-Email": "ANN@EXAMPLE.COM"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"../VLTA?page=1#article-{hostile}"
    assert [c.corrected_by for c in _corrections(demo_db)] == ["bob@example.com"]
    assert _withdraw_form(proxied.get("/company/VLTA", headers=ANN).text, hostile) is None


def test_an_alert_pages_correction_is_withdrawn_from_that_page_only(proxied, demo_db, market_alert):
    alert = vlta_alert(demo_db)
    (first, *_) = _listed(proxied, alert.id)
    proxied.post(
        f"/alert/{alert.id}/correct", data={"article_id": str(first), "label": "neutral"}, headers=ANN
    )
    (row,) = _corrections(demo_db)
    assert _withdraw_form(proxied.get(f"/alert/{alert.id}", headers=ANN).text, first) == str(row.id)
    # The market alert's page takes whole-article corrections: VLTA's is not one of its.
    form = {"correction_id": str(row.id)}
    assert proxied.post(f"/alert/{market_alert}/withdraw", data=form, headers=ANN).status_code == 404
    assert proxied.post("/alert/424242/withdraw", data=form, headers=ANN).status_code == 404
    r = proxied.post(f"/alert/{alert.id}/withdraw", data=form, headers=ANN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"../{alert.id}#article-{first}"
    assert _corrections(demo_db) == []


def test_a_typed_name_withdraws_nothing_and_no_button_is_offered(client, demo_db):
    # Without a verified user the name is whatever the form says: bob's correction would be
    # anyone's to delete. The command line withdraws any.
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    client.post("/company/VLTA/correct", data={"article_id": str(hostile), "label": "neutral", "who": "bob"})
    (row,) = _corrections(demo_db)
    assert _withdraw_form(client.get("/company/VLTA").text, hostile) is None
    r = client.post("/company/VLTA/withdraw", data={"correction_id": str(row.id), "who": "bob"})
    assert r.status_code == 403 and "needs a user the app can verify" in r.text
    assert "finsent feedback remove ID" in r.text
    # The checks come before any lookup: an unknown alert is refused the same way.
    assert client.post("/alert/424242/withdraw", data={"correction_id": str(row.id)}).status_code == 403
    # Without the token nothing is written either.
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN, user_header="X-Forwarded-Email")
    with TestClient(app) as anonymous:
        refused = anonymous.post("/company/VLTA/withdraw", data={"correction_id": str(row.id)}, headers=BOB)
        assert refused.status_code in (401, 403)
    assert len(_corrections(demo_db)) == 1
