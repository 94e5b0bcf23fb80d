"""End to end with ``dag.test()``: demo feeds over HTTP, real PostgreSQL, the released
model on the CPU, a real SMTP server. Ingest stores and scores every item, alerts fire
and email once, and running the same interval again changes nothing.

Airflow runs in a subprocess with its own AIRFLOW_HOME and a fresh metadata database on
the test PostgreSQL server; the tasks find FinSent's database, the SMTP server and the
settings through Airflow connections and the ``finsent`` Variable, as in production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow_helpers import (
    airflow_cli,
    airflow_env,
    postgres_connection,
    run_dag_test,
    serve_directory,
    smtp_connection,
    smtp_server,
    throwaway_database,
)
from sqlalchemy import func, select

from pipeline.db.models import (
    Alert,
    AlertDelivery,
    Article,
    ArticleEntity,
    Feed,
    Fetch,
    SentimentScore,
)
from pipeline.score.registry import released_model

RECIPIENT = "analyst@example.com"
TABLES = (Feed, Fetch, Article, ArticleEntity, SentimentScore, Alert, AlertDelivery)


def _model_path() -> str | None:
    # FINSENT_TEST_MODEL_PATH lets the plumbing be checked before a model is released.
    explicit = os.environ.get("FINSENT_TEST_MODEL_PATH")
    if explicit:
        return explicit
    released = released_model()
    return str(released) if released else None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        _model_path() is None, reason="no released model under models/ (and FINSENT_TEST_MODEL_PATH unset)"
    ),
]


@pytest.fixture(scope="module")
def metadata_url(pg_server_url: str) -> Iterator[str]:
    with throwaway_database(pg_server_url, "airflow_meta") as url:
        yield url


def counts(db) -> dict[str, int]:
    with db.session() as session:
        return {
            model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in TABLES
        }


def demo_items(paths: list[Path]) -> int:
    import feedparser

    return sum(len(feedparser.parse(path.read_bytes()).entries) for path in paths)


def test_ingest_then_alerts_then_the_same_interval_again(
    db, database_url: str, metadata_url: str, tmp_path: Path
) -> None:
    model = _model_path()
    assert model is not None
    from pipeline.ingest.demo import BURST_TICKER, prepare_demo

    # The end of a 15-minute interval just past: the demo's burst ends minutes before it.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)
    data_dir = tmp_path / "data"
    bundle = prepare_demo(data_dir, now)
    expected = demo_items(bundle.feed_paths)
    assert expected > 0
    feed_dir = bundle.feed_paths[0].parent
    assert all(p.parent == feed_dir for p in bundle.feed_paths)

    with serve_directory(feed_dir) as base, smtp_server() as sink:
        variable = {
            "feeds": [f"{base}/{p.name}" for p in bundle.feed_paths],
            "watchlist_path": str(bundle.watchlist),
            "data_dir": str(data_dir),
            "alert_recipients": [RECIPIENT],
        }
        extra = {
            "AIRFLOW_CONN_FINSENT_POSTGRES": postgres_connection(database_url),
            "AIRFLOW_CONN_FINSENT_SMTP": smtp_connection(sink.host, sink.port),
            "AIRFLOW_VAR_FINSENT": json.dumps(variable),
        }
        if model != str(released_model()):
            extra["FINSENT_MODEL_PATH"] = model
        env = airflow_env(tmp_path / "airflow", metadata_url, **extra)
        airflow_cli(env, "db", "migrate")

        ingest = run_dag_test(env, "finsent_ingest", now.isoformat())
        assert ingest["state"] == "success", ingest["output"][-5000:]
        mapped = [t for t in ingest["tasks"] if t.startswith("fetch[")]
        assert len(mapped) == min(4, len(bundle.feed_paths))
        assert set(ingest["tasks"].values()) == {"success"}, ingest["tasks"]
        assert all(ingest["names"][t].startswith("feeds ") for t in mapped), ingest["names"]
        assert sum(ingest["xcom"][t]["new"] for t in mapped) == expected
        assert ingest["xcom"]["score"]["scored"] == expected

        after_ingest = counts(db)
        assert after_ingest["articles"] == expected
        assert after_ingest["sentiment_scores"] == expected
        assert after_ingest["feeds"] == len(bundle.feed_paths)

        alerts = run_dag_test(env, "finsent_alerts", now.isoformat())
        assert alerts["state"] == "success", alerts["output"][-5000:]
        with db.session() as session:
            firing = session.execute(select(Alert.scope_key).where(Alert.state == "firing")).scalars().all()
        assert BURST_TICKER in firing
        assert len(sink.messages) == counts(db)["alert_deliveries"] >= 1
        assert any(BURST_TICKER in str(m["Subject"]) for m in sink.messages)
        # The default recipients plus any the watchlist names for the company.
        assert all(RECIPIENT in rcpt for rcpt in sink.envelopes), sink.envelopes

        before = counts(db)
        emails = len(sink.messages)
        again = run_dag_test(env, "finsent_ingest", now.isoformat())
        assert again["state"] == "success", again["output"][-5000:]
        again_alerts = run_dag_test(env, "finsent_alerts", now.isoformat())
        assert again_alerts["state"] == "success", again_alerts["output"][-5000:]
        assert counts(db) == before
        assert len(sink.messages) == emails
