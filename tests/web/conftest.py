"""The demo, loaded once per module through the real pipeline, and a client on the web app.

The transformer is replaced by a keyword classifier (the model has its own tests): what is
under test is the pages over ingest -> score -> rollups -> alerts on the demo's timeline.
One hostile article is added on top, the way a feed could carry it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text
from trends_helpers import add_article, add_feed, add_score

from pipeline.db.engine import Database, make_engine
from pipeline.db.models import Alert, Base
from pipeline.run import run_once
from pipeline.settings import load_settings
from pipeline.trends.rollups import refresh_rollups
from pipeline.web import create_app

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
# The UI token the tests' app is given; the `client` sends it as a bearer header (a script's
# way): tests of the browser's way (login, CSRF) are in test_security.py.
UI_TOKEN = "test-ui-token-5f0c2b9e7d"
HOSTILE_TITLE = '<script>alert("x")</script> VLTA <img src=x onerror=alert(1)> & "quotes"'
HOSTILE_SOURCE = "<b>Evil</b> Wire"

_NEGATIVE = re.compile(
    r"recall|probe|plunge|cut|downgrad|lawsuit|suspend|resign|halt|low\b|withdraw|cancel|charge|inquiry|"
    r"delay|short sell|higher .*cost|miss|fall|drop|slump|warn|loss|layoff|fine[sd]?\b|investigat|weak|"
    r"decline|pressure|default|strike",
    re.IGNORECASE,
)
_POSITIVE = re.compile(
    r"climb|rise|beat|record|raise|win|approv|surge|jump|upgrade|expand|strong|gain|rall", re.I
)


@dataclass
class _Verdict:
    label: str
    probabilities: dict[str, float]
    score: float


class KeywordClassifier:
    model_version = "web-keywords-v1"

    def score_articles(self, titles, summaries):
        out = []
        for title in titles:
            label = (
                "negative"
                if _NEGATIVE.search(title)
                else "positive"
                if _POSITIVE.search(title)
                else "neutral"
            )
            probs = {k: (0.9 if k == label else 0.05) for k in ("negative", "neutral", "positive")}
            out.append(_Verdict(label, probs, probs["positive"] - probs["negative"]))
        return out


def truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="module")
def demo_db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The session's database holding the demo as `finsent run --demo` leaves it at NOW."""
    db = Database(engine=make_engine(database_url), display_url="test")
    truncate_all(db)
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("FINSENT_") and key != "FINSENT_TEST_DATABASE_URL":
                mp.delenv(key)
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
        settings = load_settings(database_url=database_url, data_dir=tmp_path_factory.mktemp("data")).settings
        run_once(db, settings, now=NOW, demo=True, classifier=KeywordClassifier())
    with db.transaction() as s:
        feed = add_feed(s, "https://evil.example/rss", HOSTILE_SOURCE)
        hostile = add_article(
            s, feed, "hostile-1", HOSTILE_TITLE, NOW - timedelta(minutes=3), tickers=("VLTA",)
        )
        add_score(s, hostile, "negative", model="web-keywords-v1", scored_at=NOW - timedelta(minutes=2))
        add_article(
            s,
            feed,
            "hostile-2",
            "Voltara link test javascript",
            NOW - timedelta(minutes=4),
            tickers=("VLTA",),
        )
        s.execute(text("UPDATE articles SET url = 'javascript:alert(1)' WHERE item_key = 'hostile-2'"))
    refresh_rollups(db)
    try:
        yield db
    finally:
        truncate_all(db)
        db.close()


@pytest.fixture(scope="module")
def client(demo_db: Database) -> Iterator[TestClient]:
    app = create_app(demo_db, clock=lambda: NOW, token=UI_TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {UI_TOKEN}"}) as c:
        yield c


@pytest.fixture
def market_alert(demo_db):
    """A market alert over the VLTA alert's hour, with no email: its page lists the
    window's top negative headlines of the whole market."""
    with demo_db.transaction() as s:
        window = s.scalars(select(Alert).where(Alert.scope_type == "ticker", Alert.scope_key == "VLTA")).one()
        row = Alert(
            scope_type="market",
            scope_key="",
            state="firing",
            started_at=window.window_end,
            last_evaluated_at=window.window_end,
            window_start=window.window_start,
            window_end=window.window_end,
            volume=10,
            negative_share=0.6,
            baseline_share=0.2,
            deviation=4.0,
        )
        s.add(row)
        s.flush()
        alert_id = row.id
    yield alert_id
    with demo_db.transaction() as s:
        s.execute(delete(Alert).where(Alert.id == alert_id))
