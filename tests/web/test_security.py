"""Writes need the UI token: read-only without one; with one, a login cookie plus a CSRF
token, or a bearer header; the token never leaves the server. Mounted in Airflow, each
write also needs Airflow's login."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from pipeline.airflow.plugin import build_app
from pipeline.db.models import AlertSilence, Correction, UiSession
from pipeline.web import create_app
from pipeline.web.security import SESSION_MAX_AGE_S, AttemptLimiter

from .conftest import HOSTILE_TITLE, NOW, UI_TOKEN
from .test_app import vlta_alert
from .test_corrections import _article_id


@pytest.fixture(autouse=True)
def _no_corrections(demo_db):
    yield
    with demo_db.transaction() as s:
        s.execute(delete(Correction))


def _count(demo_db, model) -> int:
    with demo_db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


class Recording(TestClient):
    """A browser-like client that keeps every response, to look for the token in them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list = []

    def request(self, *args, **kwargs):
        response = super().request(*args, **kwargs)
        self.seen.append(response)
        return response


@pytest.fixture
def browser(demo_db) -> Iterator[Recording]:
    """No credentials, as a browser arrives; the token never shows in what it receives."""
    with Recording(create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN)) as c:
        yield c
        for r in c.seen:
            assert UI_TOKEN not in r.text
            assert not any(UI_TOKEN in v for v in r.headers.values())
        assert not any(UI_TOKEN in v for v in c.cookies.values())


def _login(browser: Recording, back: str = "company/VLTA"):
    return browser.post("/login", data={"token": UI_TOKEN, "back": back}, follow_redirects=False)


def _csrf(page: str, action: str) -> str:
    form = page[page.index(f'action="{action}"') :]
    return re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)


@pytest.mark.slow
def test_without_a_token_the_app_is_read_only(demo_db):
    alert = vlta_alert(demo_db)
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    with TestClient(create_app(demo_db, clock=lambda: NOW)) as c:
        page = c.get("/company/VLTA").text
        assert 'action="VLTA/correct"' not in page and "FINSENT_UI_TOKEN" in page
        alert_page = c.get(f"/alert/{alert.id}").text
        assert "/silence" not in alert_page and "/correct" not in alert_page
        writes = [
            ("/company/VLTA/correct", {"article_id": str(hostile), "label": "neutral", "who": "ann"}),
            (f"/alert/{alert.id}/silence", {"duration": "4h"}),
            ("/login", {"token": "anything"}),
        ]
        silences = _count(demo_db, AlertSilence)
        for path, data in writes:
            r = c.post(path, data=data, headers={"Authorization": "Bearer anything"})
            assert r.status_code == 403 and "FINSENT_UI_TOKEN" in r.text, path
    assert _count(demo_db, Correction) == 0 and _count(demo_db, AlertSilence) == silences


def test_a_wrong_token_is_refused(browser, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    page = browser.get("/company/VLTA").text
    assert 'action="./login"' in page or 'action="../login"' in page
    assert 'action="VLTA/correct"' not in page  # no form until logged in
    alert_page = browser.get(f"/alert/{vlta_alert(demo_db).id}").text
    assert alert_page.count('action="../login"') == 1 and "/silence" not in alert_page
    data = {"article_id": str(hostile), "label": "neutral", "who": "ann"}
    assert browser.post("/company/VLTA/correct", data=data).status_code == 403
    wrong = browser.post("/company/VLTA/correct", data=data, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    login = browser.post("/login", data={"token": UI_TOKEN + "x"}, follow_redirects=False)
    assert login.status_code == 403 and "set-cookie" not in login.headers
    browser.cookies.set("finsent_session", "forged.0123abcd")
    assert browser.post("/company/VLTA/correct", data=data).status_code == 403
    assert _count(demo_db, Correction) == 0


def test_login_then_a_correction_is_stored(browser, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    r = _login(browser)
    assert r.status_code == 303 and r.headers["location"] == "company/VLTA"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("finsent_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = browser.get("/company/VLTA").text
    assert 'action="VLTA/correct"' in page and "Log out" in page
    data = {"article_id": str(hostile), "label": "neutral", "who": "ann", "csrf": _csrf(page, "VLTA/correct")}
    r = browser.post("/company/VLTA/correct", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert [(c.article_id, c.label) for c in _get_corrections(demo_db)] == [(hostile, "neutral")]
    # The silence form on an alert page carries its own token.
    alert = vlta_alert(demo_db)
    alert_page = browser.get(f"/alert/{alert.id}").text
    before = _count(demo_db, AlertSilence)
    silence = {"duration": "1h", "csrf": _csrf(alert_page, f"{alert.id}/silence")}
    assert browser.post(f"/alert/{alert.id}/silence", data=silence, follow_redirects=False).status_code == 303
    assert _count(demo_db, AlertSilence) == before + 1
    # Logging out ends the session.
    assert browser.post("/logout", data={"back": "company/VLTA"}, follow_redirects=False).status_code == 303
    assert browser.post("/company/VLTA/correct", data=data).status_code == 403


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie_and_every_worker(demo_db):
    from datetime import timedelta

    hostile = _article_id(demo_db, HOSTILE_TITLE)
    # Two apps on one database: the workers of one server (uvicorn, Airflow's API server).
    one, two = (create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN) for _ in range(2))
    with TestClient(one) as first, TestClient(two) as second:
        assert _login(first).status_code == 303
        cookie = first.cookies["finsent_session"]
        second.cookies.set("finsent_session", cookie)
        page = second.get("/company/VLTA").text
        assert 'action="VLTA/correct"' in page  # the other worker knows the session
        data = {
            "article_id": str(hostile),
            "label": "neutral",
            "who": "ann",
            "csrf": _csrf(page, "VLTA/correct"),
        }
        assert second.post("/company/VLTA/correct", data=data, follow_redirects=False).status_code == 303
        assert first.post("/logout", data={"back": "company/VLTA"}, follow_redirects=False).status_code == 303
        # A copy of the cookie taken before logging out is refused, on either worker.
        for client in (first, second):
            client.cookies.set("finsent_session", cookie)
            assert client.post("/company/VLTA/correct", data=data).status_code == 403
            assert 'action="VLTA/correct"' not in client.get("/company/VLTA").text
    # The server's record expires with the cookie, whatever the browser keeps.
    with TestClient(create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN)) as c:
        assert _login(c).status_code == 303
        kept = c.cookies["finsent_session"]
    later = NOW + timedelta(seconds=SESSION_MAX_AGE_S + 60)
    with TestClient(create_app(demo_db, clock=lambda: later, token=UI_TOKEN)) as c:
        c.cookies.set("finsent_session", kept)
        assert 'action="VLTA/correct"' not in c.get("/company/VLTA").text
    with demo_db.session() as s:
        stored = s.scalars(select(UiSession.nonce_hash)).all()
    assert stored and not any(h in kept or h in cookie for h in stored)  # hashes, not cookies


def test_the_server_ends_a_session_after_its_age_whatever_the_browser_keeps():
    from pipeline.web.security import new_session, valid_session

    start = 1_800_000_000.0
    cookie = new_session(UI_TOKEN, now=start)
    assert UI_TOKEN not in cookie
    assert valid_session(UI_TOKEN, cookie, now=start + 60)
    assert not valid_session(UI_TOKEN, cookie, now=start + SESSION_MAX_AGE_S)  # a copied cookie too
    assert not valid_session(UI_TOKEN + "x", cookie, now=start + 60)  # the token changed
    nonce, _, mac = cookie.split(".")
    younger = f"{nonce}.{int(start + SESSION_MAX_AGE_S)}.{mac}"  # an issue time moved on
    assert not valid_session(UI_TOKEN, younger, now=start + SESSION_MAX_AGE_S + 60)


def _get_corrections(demo_db) -> list[Correction]:
    with demo_db.session() as s:
        return list(s.scalars(select(Correction)))


def test_missing_or_invalid_csrf_is_refused(browser, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    alert = vlta_alert(demo_db)
    _login(browser)
    page = browser.get("/company/VLTA").text
    good = _csrf(page, "VLTA/correct")
    silence_csrf = _csrf(browser.get(f"/alert/{alert.id}").text, f"{alert.id}/silence")
    data = {"article_id": str(hostile), "label": "neutral", "who": "ann"}
    for csrf in (None, "", "0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1"), silence_csrf):
        sent = data if csrf is None else {**data, "csrf": csrf}
        r = browser.post("/company/VLTA/correct", data=sent)
        assert r.status_code == 403 and "CSRF" in r.text, csrf
    # Another session's token does not fit this one.
    _login(browser)
    assert browser.post("/company/VLTA/correct", data={**data, "csrf": good}).status_code == 403
    # The origin check still applies to a valid token.
    fresh = _csrf(browser.get("/company/VLTA").text, "VLTA/correct")
    evil = {"Origin": "https://evil.example"}
    assert (
        browser.post("/company/VLTA/correct", data={**data, "csrf": fresh}, headers=evil).status_code == 403
    )
    assert _count(demo_db, Correction) == 0


def test_a_bearer_header_writes_without_a_form_token(browser, demo_db):
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    r = browser.post(
        "/company/VLTA/correct",
        data={"article_id": str(hostile), "label": "positive", "who": "script"},
        headers={"Authorization": f"Bearer {UI_TOKEN}"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert [c.corrected_by for c in _get_corrections(demo_db)] == ["script"]


def test_login_sends_back_only_to_this_apps_pages(browser):
    for back in ("https://evil.example/", "//evil.example/x", "/etc", "../../admin", "javascript:alert(1)"):
        assert _login(browser, back).headers["location"] == "./", back


def test_mounted_in_airflow_an_anonymous_write_is_refused(demo_db, monkeypatch):
    # The app exactly as the plugin mounts it; the token is configured, so only Airflow's
    # login is missing. No Airflow is running: nothing can vouch for the writer.
    monkeypatch.setenv("FINSENT_UI_TOKEN", UI_TOKEN)
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    alert = vlta_alert(demo_db)
    data = {"article_id": str(hostile), "label": "neutral", "who": "anon"}
    with TestClient(build_app(), root_path="/finsent") as c:
        for path, sent, headers in [
            ("/company/VLTA/correct", data, {}),
            ("/company/VLTA/correct", data, {"Authorization": f"Bearer {UI_TOKEN}"}),  # FinSent's token alone
            ("/company/VLTA/correct", data, {"Authorization": "Bearer not.a.jwt"}),
            (f"/alert/{alert.id}/silence", {"duration": "4h"}, {"Cookie": "_token=forged.jwt.value"}),
            ("/login", {"token": UI_TOKEN}, {}),
        ]:
            r = c.post(path, data=sent, headers=headers, follow_redirects=False)
            assert r.status_code in (401, 403), (path, headers, r.status_code)
            assert "Airflow" in r.text and UI_TOKEN not in r.text
    assert _count(demo_db, Correction) == 0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_attempt_limiter_counts_per_client_over_a_sliding_window():
    clock = _Clock()
    limiter = AttemptLimiter(3, 60, clock=clock, max_clients=2)
    for _ in range(2):
        limiter.failed("10.0.0.1")
        clock.now += 10
    assert limiter.retry_after("10.0.0.1") is None  # two of three
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 40  # the first failure was 20 s ago
    assert limiter.retry_after("10.0.0.2") is None  # another client is not held back
    clock.now += 40
    assert limiter.retry_after("10.0.0.1") is None
    # Bounded: beyond max_clients, the client that failed longest ago is forgotten first.
    limiter.failed("10.0.0.2")
    limiter.failed("10.0.0.3")
    assert len(limiter._failures) == 2 and "10.0.0.1" not in limiter._failures
    with pytest.raises(ValueError, match="must be positive"):
        AttemptLimiter(0, 60)


@pytest.mark.slow
def test_too_many_wrong_tokens_answer_429_until_the_window_passes(demo_db):
    clock = _Clock()
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    form = {"article_id": str(hostile), "label": "neutral", "who": "ann"}
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN, limiter=AttemptLimiter(3, 60, clock=clock))
    with TestClient(app) as c:
        # No token at all is not a guess: it does not count.
        for _ in range(5):
            assert c.post("/company/VLTA/correct", data=form).status_code == 403
        # Wrong tokens do, whichever way they come: a login, a bearer header, a forged cookie.
        assert c.post("/login", data={"token": "guess-1"}).status_code == 403
        bad = {"Authorization": "Bearer guess-2"}
        assert c.post("/company/VLTA/correct", data=form, headers=bad).status_code == 403
        c.cookies.set("finsent_session", "forged.cafe")
        assert c.post("/company/VLTA/correct", data=form).status_code == 403
        c.cookies.clear()
        # Now even the right token is held back, for logins and writes; pages still read.
        r = c.post("/login", data={"token": UI_TOKEN}, follow_redirects=False)
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert "Too many wrong tokens" in r.text
        good = {"Authorization": f"Bearer {UI_TOKEN}"}
        assert c.post("/company/VLTA/correct", data=form, headers=good).status_code == 429
        assert c.get("/company/VLTA").status_code == 200
        assert _count(demo_db, Correction) == 0
        clock.now += 60
        assert c.post("/login", data={"token": UI_TOKEN}, follow_redirects=False).status_code == 303
        stored = c.post("/company/VLTA/correct", data=form, headers=good, follow_redirects=False)
        assert stored.status_code == 303 and _count(demo_db, Correction) == 1


def test_a_logged_out_cookie_is_no_guess_and_does_not_count(demo_db):
    # An analyst's old login (logged out, or past its age) is refused, but it was issued
    # with the token: only cookies the token did not sign count as guesses.
    clock = _Clock()
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    form = {"article_id": str(hostile), "label": "neutral", "who": "ann"}
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN, limiter=AttemptLimiter(3, 60, clock=clock))
    with TestClient(app) as c:
        assert _login(c).status_code == 303
        cookie = c.cookies["finsent_session"]
        assert c.post("/logout", data={"back": "company/VLTA"}, follow_redirects=False).status_code == 303
        for _ in range(5):
            c.cookies.clear()
            c.cookies.set("finsent_session", cookie)
            assert c.post("/company/VLTA/correct", data=form).status_code == 403
        c.cookies.clear()
        assert _login(c).status_code == 303  # not 429
        nonce, issued, mac = cookie.split(".")
        for forged in (f"{nonce}.{issued}.{'0' * len(mac)}", f"{nonce}.{int(issued) + 1}.{mac}", "x.y.z"):
            c.cookies.clear()  # the new login's cookie goes: only the forged one is sent
            c.cookies.set("finsent_session", forged)
            assert c.post("/company/VLTA/correct", data=form).status_code == 403
        c.cookies.clear()
        assert _login(c).status_code == 429
