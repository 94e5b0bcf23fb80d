"""The companies page's "last N days" are N UTC days, today's included: days=1 is today."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from trends_helpers import add_article, add_feed, add_score

from pipeline.trends.rollups import refresh_rollups
from pipeline.web import create_app

from .conftest import NOW, UI_TOKEN

TODAY = datetime(2026, 11, 20, tzinfo=UTC)  # NOW's UTC day
# One company per edge, each with one article: the first and last minutes a period can hold
# and the last minute before it.
EDGES = {
    "TDAY": TODAY,  # today's midnight: in every period
    "YEST": TODAY - timedelta(minutes=30),  # yesterday 23:30: not in "1 day"
    "WKIN": TODAY - timedelta(days=6),  # the 7th UTC day back, 00:00: in "7 days"
    "WKOUT": TODAY - timedelta(days=6, minutes=30),  # the evening before: not in "7 days"
}


@pytest.fixture
def client(db):
    with db.transaction() as s:
        feed = add_feed(s, "https://wire.example/rss", "Wire")
        for ticker, when in EDGES.items():
            article = add_article(s, feed, ticker, f"{ticker} news", when, tickers=(ticker,))
            add_score(s, article, "neutral", scored_at=when)
    refresh_rollups(db)
    app = create_app(db, clock=lambda: NOW, token=UI_TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {UI_TOKEN}"}) as c:
        yield c


def listed(client: TestClient, days: int) -> set[str]:
    r = client.get(f"/companies?days={days}")
    assert r.status_code == 200
    return set(re.findall(r'<a href="./company/([^"]+)">', r.text))


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (1, {"TDAY"}),
        (7, {"TDAY", "YEST", "WKIN"}),
        (30, set(EDGES)),
    ],
)
def test_last_n_days_are_n_utc_days_with_today(client, days, expected):
    assert listed(client, days) == expected
