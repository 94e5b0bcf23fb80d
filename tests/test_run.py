"""The README's main job, as a user runs it: `finsent run --demo` on embedded defaults.

Embedded PostgreSQL in a fresh data dir, the bundled demo feeds, the released model on the
CPU, alerts as .eml files in the outbox. A second run stores nothing and sends nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.score.registry import released_model


def model_env() -> dict[str, str]:
    explicit = os.environ.get("FINSENT_TEST_MODEL_PATH")
    if explicit:
        return {"FINSENT_MODEL_PATH": explicit}
    if released_model() is None:
        pytest.skip("no released model under models/ (and FINSENT_TEST_MODEL_PATH unset)")
    return {}


def finsent(data_dir: Path, *args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(extra_env)
    env["HF_HUB_OFFLINE"] = "1"
    env["XDG_CONFIG_HOME"] = str(data_dir.parent / "cfg")
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
def test_demo_run_end_to_end_twice(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = model_env()
    data_dir = Path(tmp_path_factory.mktemp("main")) / "d"  # short: the DB socket lives here
    first = finsent(data_dir, "run", "--demo", extra_env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "(embedded)" in out
    assert " 0 failed" in out and "new" in out
    assert "scoring:" in out and "articles scored" in out
    assert "1 fired" in out and "ticker VLTA" in out, out
    outbox = data_dir / "outbox"
    emails = sorted(outbox.glob("*.eml"))
    assert len(emails) == 1
    assert "VLTA" in emails[0].read_text()
    assert str(outbox) in out
    assert out.rstrip().splitlines()[-1].startswith("next: `finsent trends VLTA`")

    second = finsent(data_dir, "run", "--demo", extra_env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert " 0 new, 0 updated" in second.stdout
    assert "nothing new to score" in second.stdout
    assert "0 fired" in second.stdout and "0 email(s) queued" in second.stdout
    assert sorted(outbox.glob("*.eml")) == emails
    # The embedded server stopped with the last process: nothing left running.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


@pytest.mark.slow
def test_run_refuses_unmigrated_external_database(empty_database_url: str, tmp_path: Path) -> None:
    proc = finsent(tmp_path / "d", "run", extra_env={"FINSENT_DATABASE_URL": empty_database_url})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "finsent: error: database: schema is not initialised: run `finsent db upgrade`"
    )


@pytest.mark.slow
def test_run_with_a_wrong_model_path_is_one_line(db, database_url: str, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        "<item><title>Acme shares fall</title><guid>x1</guid></item></channel></rss>"
    )
    env = {
        "FINSENT_DATABASE_URL": database_url,
        "FINSENT_MODEL_PATH": str(tmp_path / "no-such-model"),
        "FINSENT_FEEDS": str(feed),
    }
    proc = finsent(tmp_path / "d", "run", "--skip", "alerts", extra_env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("finsent: error: model:") and "no-such-model" in last
    # Refused before ingest: nothing was stored that this run would have left unscored.
    assert "ingest:" not in proc.stdout + proc.stderr
    proc2 = finsent(tmp_path / "d", "ingest", extra_env=env)
    assert proc2.returncode == 0
    assert "1 new" in proc2.stdout


@pytest.mark.slow
def test_score_brings_the_trend_views_up_to_date(db, database_url: str, tmp_path: Path) -> None:
    from sqlalchemy import func, select, text

    from pipeline.db.models import SentimentScore

    feed = tmp_path / "feed.xml"
    feed.write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        "<item><title>Acme shares fall after a profit warning</title><guid>x1</guid>"
        "<pubDate>Sun, 29 Nov 2026 06:00:00 +0000</pubDate></item></channel></rss>"
    )
    env = {"FINSENT_DATABASE_URL": database_url, "FINSENT_FEEDS": str(feed), **model_env()}
    assert (
        finsent(tmp_path / "d", "run", "--skip", "score", "--skip", "alerts", extra_env=env).returncode == 0
    )
    proc = finsent(tmp_path / "d", "score", extra_env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 articles scored" in proc.stdout and "rollups:" in proc.stdout
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(SentimentScore)).scalar_one() == 1
        assert s.execute(text("SELECT count(*) FROM trends_dirty_hours")).scalar_one() == 0
        assert (
            s.execute(
                text("SELECT sum(n_articles) FROM sentiment_hourly WHERE scope_type = 'market'")
            ).scalar_one()
            == 1
        )


def test_a_demo_run_leaves_the_users_feeds_watchlist_and_delivery_aside(db, settings, tmp_path, caplog):
    """The demo in a data dir of its own still reads the config file and FINSENT_*: with the
    user's watchlist the demo's alert would not fire, and with their transport and
    recipients alerts about fictional news would reach a real desk."""
    from datetime import UTC, datetime

    from pipeline.run import register_demo

    own = tmp_path / "watchlist.csv"
    own.write_text("ticker,name,aliases,subscribers\nAAPL,Apple Inc.,,pm@example.com\n", encoding="utf-8")
    configured = settings.model_copy(
        update={
            "watchlist_path": own,
            "feeds": ["https://feeds.example.com/real.xml"],
            "alert_transport": "smtp,webhook",
            "alert_recipients": ["risk-desk@example.com"],
            "smtp_host": "smtp.example.com",
            # The demo's story is written for the shipped detector: a 30-minute window
            # judged VLTA's hour on half of it ("100% of 11" instead of "91% of 22").
            "alert_window_minutes": 30,
            "alert_threshold": 4.5,
        }
    )
    with caplog.at_level("WARNING", logger="pipeline.run"):
        demo = register_demo(db, configured, datetime(2026, 11, 20, 15, tzinfo=UTC))

    assert demo.watchlist_path != own and demo.watchlist_path.name == "watchlist.csv"
    assert (demo.feeds, demo.alert_transports, demo.alert_recipients) == ([], ("outbox",), [])
    assert (demo.alert_window_minutes, demo.alert_threshold, demo.smtp_host) == (60, 3.0, None)
    assert (
        "your configured feeds, watchlist, alert transport, alert recipients, alert settings are not"
        in caplog.text
    )
    # Unconfigured, nothing is said.
    caplog.clear()
    register_demo(db, settings, datetime(2026, 11, 20, 15, tzinfo=UTC))
    assert caplog.text == ""


def test_a_configured_feed_that_is_no_feed_says_where_it_is_listed(db, settings, tmp_path):
    """The user typed no `feeds add`: the error points at FINSENT_FEEDS / the config file."""
    from pipeline.errors import ConfigError
    from pipeline.run import register_configured_feeds

    typo = tmp_path / "blomberg.atom"
    with pytest.raises(ConfigError) as caught:
        register_configured_feeds(db, settings.model_copy(update={"feeds": [str(typo)]}))
    message = str(caught.value)
    assert str(typo) in message and "FINSENT_FEEDS or `feeds` in the config file" in message
    assert "\n" not in message


def test_a_demo_is_refused_in_a_database_that_holds_feeds_of_your_own(db, settings, tmp_path):
    """Fictional news would enter the real feeds' trends, and the run would send their alerts
    and pending emails to the demo's outbox instead of their recipients."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from pipeline.db.models import Feed
    from pipeline.errors import ConfigError
    from pipeline.ingest.registry import add_feeds
    from pipeline.run import register_demo

    now = datetime(2026, 11, 20, 15, tzinfo=UTC)
    register_demo(db, settings, now)  # a fresh database, then again: the demo's feeds only
    register_demo(db, settings, now)
    with db.transaction() as session:
        add_feeds(session, ["https://user:secret@feeds.example.com/real.xml"])
    with pytest.raises(ConfigError) as caught:
        register_demo(db, settings, now)
    message = str(caught.value)
    assert "holds 1 feed(s) of your own" in message and "secret" not in message
    assert "--data-dir" in message and "\n" not in message
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Feed)) == 6  # five demo feeds, one own
