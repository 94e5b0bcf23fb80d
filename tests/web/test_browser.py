"""In a real browser: headless Chromium drives the app, served by uvicorn, over the demo.

Each page loads without an error in the browser's console, the company chart is drawn, a
correction made through the form (after logging in with the UI token) lands in the table, and
one without the token is refused. Screenshots of the pages are saved under the test's
temporary folder (docs/img/company-vlta.png is one of them).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium
(the ``dev`` extra). Without them the tests skip, except under ``CI=true``, where a missing
browser fails: CI must not pass by not looking.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alerts_helpers import free_port
from click.testing import CliRunner
from sqlalchemy import delete, select

from pipeline.cli import cli
from pipeline.db.models import Article, Correction
from pipeline.feedback.export import training_examples
from pipeline.web import create_app

from .conftest import HOSTILE_TITLE, NOW, UI_TOKEN
from .test_app import vlta_alert

pytestmark = pytest.mark.slow

# Where Debian puts them; other systems' names are tried too.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER = "chromedriver"
WHO = "Browser Ann"


def _missing(what: str) -> None:
    """Skip on a developer's machine without the browser; fail under CI."""
    message = (
        f"{what}: install Debian's chromium and chromium-driver "
        "(`apt-get install -y chromium chromium-driver`) and the dev extra (`pip install -e '.[dev]'`)"
    )
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _browser_binary() -> str:
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    _missing(f"no Chromium found (looked for {', '.join(BROWSERS)})")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def server(demo_db) -> Iterator[str]:
    """The app over the demo, served by uvicorn on a free port of 127.0.0.1 (a thread of
    this process: the clock stays pinned to the demo's NOW); its base URL."""
    import uvicorn

    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn-browser-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive(), "uvicorn stopped before it served (see the log above)"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = _browser_binary()
    driver_path = shutil.which(CHROMEDRIVER)
    if driver_path is None:
        _missing("no chromedriver on PATH")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
        "--disable-gpu",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    # The console's messages, read back with get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def no_corrections(demo_db) -> Iterator[None]:
    yield
    with demo_db.transaction() as s:
        s.execute(delete(Correction))


def _open(browser: Any, url: str) -> None:
    """Load a page and fail on any SEVERE console entry (a script error, a failed resource,
    a blocked request) and on a dialog (an escaped title that a browser ran after all)."""
    from selenium.common.exceptions import NoAlertPresentException

    browser.get_log("browser")  # what earlier pages left
    browser.get(url)
    severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, f"console errors on {url}: {severe}"
    try:
        dialog = browser.switch_to.alert.text
    except NoAlertPresentException:
        dialog = None
    assert dialog is None, f"{url} opened a dialog {dialog!r}: markup from the data ran as script"


def _shot(browser: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path)), f"no screenshot of {name}"
    assert path.stat().st_size > 1000
    return path


def _submit(browser: Any, button: Any) -> None:
    """Click a form's button and wait until the browser has left the page (the next page's
    elements, not this one's, are what the test reads next).

    The old page is marked on its window object, which a navigation replaces. Waiting for an
    old element to go stale raced with the navigation: chromedriver can answer a query on a
    node being detached with "Node with given id does not belong to the document" (an
    unknown error, not a stale element). Errors of a page being switched are retried;
    any other (a crashed browser, a lost session) fails at once with its own message."""
    from selenium.common.exceptions import JavascriptException, WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    def navigated(driver: Any) -> bool:
        try:
            return driver.execute_script(
                "return window.__finsentOldPage === undefined && document.readyState === 'complete'"
            )
        except JavascriptException:  # the old page's script context torn down mid-switch
            return False
        except WebDriverException as exc:
            message = str(exc).lower()
            if "does not belong to the document" in message or "execution context" in message:
                return False
            raise

    browser.execute_script("window.__finsentOldPage = true;")
    button.click()
    WebDriverWait(browser, 15).until(navigated)


def _log_in(browser: Any, token: str) -> None:
    from selenium.webdriver.common.by import By

    login = browser.find_element(By.CSS_SELECTOR, "form.login")
    login.find_element(By.NAME, "token").send_keys(token)
    _submit(browser, login.find_element(By.CSS_SELECTOR, "button[type=submit]"))


def _article_id(demo_db, title: str) -> int:
    with demo_db.session() as s:
        return s.scalars(select(Article.id).where(Article.title == title)).one()


def test_every_page_loads_without_console_errors(server, browser, demo_db, tmp_path):
    from selenium.webdriver.common.by import By

    alert_id = vlta_alert(demo_db).id
    pages = {
        "market": ("", "Market overview"),
        "company-vlta": ("company/VLTA", "VLTA"),
        "alert": (f"alert/{alert_id}", f"#{alert_id}"),
        "feeds": ("feeds", "Feeds"),
    }
    for name, (path, heading) in pages.items():
        _open(browser, server + path)
        assert heading in browser.find_element(By.TAG_NAME, "h1").text, name
        # The stylesheet is the package's own and it applied (nothing comes from a CDN).
        assert browser.execute_script("return document.styleSheets.length") == 1, name
        _shot(browser, tmp_path, name)
    # A ticker that is not one: the 404 page with a "did you mean", and still no console error
    # from the page itself (the 404 status of the document is what Chromium logs, if anything).
    browser.get_log("browser")
    browser.get(server + "company/VLTAX")
    assert "VLTA" in browser.find_element(By.TAG_NAME, "main").text
    assert not [
        e for e in browser.get_log("browser") if e.get("level") == "SEVERE" and "VLTAX" not in e["message"]
    ]


def test_company_chart_is_drawn(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _open(browser, server + "company/VLTA")
    chart = browser.find_element(By.CSS_SELECTOR, "svg.chart")
    assert chart.is_displayed()
    size = chart.size
    assert size["width"] > 300 and size["height"] > 100, size
    lines = chart.find_elements(By.CSS_SELECTOR, "polyline.line, path")
    assert lines, "no line drawn in the company chart"
    points = max(len((line.get_attribute("points") or "").split()) for line in lines)
    assert points >= 10, f"the chart's longest line has {points} points"
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar")) >= 10  # volume bars
    assert chart.find_elements(By.CSS_SELECTOR, "rect.band")  # the VLTA alert episode, shaded
    # Drawn, not just present: the browser laid the bars out inside the chart.
    box = browser.execute_script(
        "const b = arguments[0].querySelector('rect.bar').getBBox(); return [b.width, b.height];", chart
    )
    assert box[0] > 0 and box[1] >= 0
    _shot(browser, tmp_path, "company-vlta-chart")


def test_a_correction_made_in_the_browser_lands_in_the_table(
    server, browser, demo_db, database_url, tmp_path, no_corrections
):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    _open(browser, server + "company/VLTA")
    assert not browser.find_elements(By.CSS_SELECTOR, "form.correct")  # locked until logged in
    _log_in(browser, UI_TOKEN)
    assert browser.current_url.endswith("/company/VLTA"), browser.current_url
    assert "Writes unlocked" in browser.find_element(By.TAG_NAME, "main").text
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    row = browser.find_element(By.ID, f"article-{hostile}")
    row.find_element(By.NAME, "who").send_keys(WHO)
    _submit(browser, row.find_element(By.CSS_SELECTOR, "button[value=neutral]"))
    main = browser.find_element(By.TAG_NAME, "main").text
    with demo_db.session() as s:
        (saved,) = s.scalars(select(Correction)).all()
        got = (saved.article_id, saved.ticker, saved.label, saved.corrected_by, saved.model_label)
    assert got == (hostile, "VLTA", "neutral", WHO, "negative")
    assert f"Correction #{saved.id} saved" in main
    assert f"corrected={saved.id}" in browser.current_url and browser.current_url.endswith(
        f"#article-{hostile}"
    )
    # No console error on the page the form led back to.
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    _shot(browser, tmp_path, "company-vlta-corrected")
    # Where analysts and training find it: `finsent feedback export`, and the training rows.
    exported = CliRunner().invoke(cli, ["feedback", "export"], env={"FINSENT_DATABASE_URL": database_url})
    assert exported.exit_code == 0, exported.output
    (line,) = [json.loads(x) for x in exported.stdout.splitlines()]
    assert (line["title"], line["ticker"], line["label"]) == (HOSTILE_TITLE, "VLTA", "neutral")
    with demo_db.session() as s:
        assert [r["label"] for r in training_examples(s)] == ["neutral"]


def test_a_correction_without_the_token_is_refused(server, browser, demo_db, tmp_path, no_corrections):
    from selenium.webdriver.common.by import By

    # A wrong token: the login is refused and the forms stay locked.
    browser.delete_all_cookies()
    _open(browser, server + "company/VLTA")
    _log_in(browser, "not-the-token")
    assert "Wrong token" in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, tmp_path, "login-refused")
    _open(browser, server + "company/VLTA")
    assert not browser.find_elements(By.CSS_SELECTOR, "form.correct")
    # A form shown while logged in, posted after the login is gone (the cookie cleared):
    # refused, and nothing stored.
    _log_in(browser, UI_TOKEN)
    hostile = _article_id(demo_db, HOSTILE_TITLE)
    row = browser.find_element(By.ID, f"article-{hostile}")
    row.find_element(By.NAME, "who").send_keys(WHO)
    browser.delete_all_cookies()
    _submit(browser, row.find_element(By.CSS_SELECTOR, "button[value=negative]"))
    assert "Log in with the FinSent UI token" in browser.find_element(By.TAG_NAME, "main").text
    _shot(browser, tmp_path, "correction-refused")
    with demo_db.session() as s:
        assert s.scalars(select(Correction)).all() == []
