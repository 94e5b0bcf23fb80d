"""`finsent alerts ...` end to end on the test database."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from alerts_helpers import NOW, add_burst, add_feed, add_history
from click.testing import CliRunner

from pipeline.cli import cli


@pytest.fixture
def run(db, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key in [k for k in os.environ if k.startswith("FINSENT_") and k != "FINSENT_TEST_DATABASE_URL"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["alerts", *args])

    return invoke


@pytest.mark.slow
def test_check_writes_the_alert_to_the_outbox_once(db, run, tmp_path):
    with db.transaction() as s:
        feed = add_feed(s, "Wire")
        add_history(s, feed, ticker="ACME", end=NOW, hours=48, per_hour=4, negative_share=0.25)
        add_burst(s, feed, ticker="ACME", end=NOW, count=12, negatives=10)

    first = run("check", "--at", NOW.isoformat())
    assert first.exit_code == 0, first.output
    assert "1 fired" in first.output and "ticker ACME" in first.output
    assert "1 sent" in first.output and str(tmp_path / "data" / "outbox") in first.output
    files = list((tmp_path / "data" / "outbox").glob("*.eml"))
    assert len(files) == 1

    again = run("check", "--at", (NOW + timedelta(minutes=5)).isoformat())
    assert again.exit_code == 0 and "0 fired" in again.output and "0 sent" in again.output
    assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 1

    listed = run("list", "--all")
    for bad in ("0", "-1"):  # a negative limit was a database error, zero said "no alerts"
        refused = run("list", "--limit", bad)
        assert refused.exit_code == 2 and "--limit" in refused.output
    assert "firing" in listed.output and "ticker ACME" in listed.output and "outbox: 1 sent" in listed.output
    assert "silenced until" not in listed.output
    assert run("silence", "--ticker", "ACME", "--for", "4h").exit_code == 0
    muted = run("list").output.splitlines()[0]
    assert "ticker ACME" in muted and "(silenced until " in muted and "by silence #1)" in muted


def test_silence_list_unsilence(run):
    made = run("silence", "--ticker", "acme", "--for", "4h", "--reason", "earnings call")
    assert made.exit_code == 0 and "ticker ACME muted until" in made.output
    assert "(earnings call)" in run("list").output
    ended = run("unsilence", "1")
    assert ended.exit_code == 0 and "ended 1 silence(s) #1" in ended.output
    assert "silence #1" not in run("list").output
    again = run("unsilence", "1")
    assert again.exit_code == 0 and "ended 0 silence(s)" in again.output
    assert "already over, left as they were: #1" in again.output
    muted = run("mute", "--market", "--for", "1h")  # the word many reach for first
    assert muted.exit_code == 0 and "silence #2: market muted until" in muted.output
    assert run("unmute", "2").exit_code == 0


@pytest.mark.parametrize("length", ["3000000d", "99999999999999999999w", "600w"])
def test_a_silence_longer_than_ten_years_is_one_line_usage_error(run, length):
    result = run("silence", "--ticker", "ACME", "--for", length)
    assert result.exit_code == 2 and "longer than ten years" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_silence_ticker_is_checked_and_its_reason_kept_on_one_plain_line(run):
    bad = run("silence", "--ticker", "'; DROP TABLE x", "--for", "1h")
    assert bad.exit_code == 2 and "is not a ticker" in bad.output
    made = run("silence", "--ticker", "$acme", "--for", "1h", "--reason", "call\nat 5\u202egnirps")
    assert made.exit_code == 0 and "ticker ACME muted" in made.output
    listed = run("list").output
    assert "(call at 5gnirps)" in listed and "\u202e" not in listed


def test_a_source_scope_named_by_its_url_is_shown_without_credentials(run):
    made = run("silence", "--source", "https://analyst:hunter2@feeds.example.com/rss", "--for", "1h")
    assert made.exit_code == 0, made.output
    listed = run("list").output
    assert "hunter2" not in made.output + listed and "analyst:***@feeds.example.com" in listed


def test_silence_resolves_a_feed_id_and_warns_on_a_typo(db, run):
    with db.transaction() as s:
        feed = add_feed(s, "Wire")
        add_history(s, feed, ticker="VLTA", end=NOW, hours=2, per_hour=1, negative_share=0.0)
    by_id = run("silence", "--source", str(feed), "--for", "1h")
    assert by_id.exit_code == 0 and f"feed #{feed} is source 'Wire'" in by_id.output
    assert "source Wire muted until" in by_id.output
    typo = run("silence", "--ticker", "vlat", "--for", "1h")
    assert typo.exit_code == 0 and "ticker VLAT muted until" in typo.stdout
    assert "warning: no article has mentioned ticker 'VLAT' yet (did you mean 'VLTA'?)" in typo.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["silence", "--ticker", "A", "--for", "1h", "--until", "2030-01-01"],
            "exactly one of --until or --for",
        ),
        (["silence", "--ticker", "A", "--market", "--for", "1h"], "exactly one of --ticker"),
        (["silence", "--ticker", "A", "--until", "2001-01-01T00:00Z"], "in the past"),
        (["silence", "--ticker", "A", "--for", "soon"], "not a duration"),
        (["silence", "--ticker", "A", "--for", "0h"], "Invalid value for --for: a silence must last longer"),
        (["test-email", "--to", "notanemail"], "'notanemail' is not an email address"),
        (["check", "--at", "yesterday"], "not an ISO 8601 time"),
        (["check", "--at", "2999-01-01"], "is in the future"),
    ],
)
def test_bad_input_is_one_line(run, args, fragment):
    result = run(*args)
    assert result.exit_code != 0
    assert fragment in result.output and result.output.count("\n") <= 1


def test_test_email_goes_to_the_outbox(run, tmp_path):
    result = run("test-email", "--to", "me@example.com")
    assert result.exit_code == 0, result.output
    (eml,) = (tmp_path / "data" / "outbox").glob("*.eml")
    assert "test email sent -> " + str(eml) + " (alert_transport outbox)" in result.output
    assert b"[FinSent TEST]" in eml.read_bytes()


def test_an_smtp_server_the_transport_does_not_use_is_warned_about(run, monkeypatch, caplog):
    # Set up a server and forget the transport: every alert would stay in the outbox.
    monkeypatch.setenv("FINSENT_SMTP_HOST", "smtp.example.com")
    result = run("test-email", "--to", "me@example.com")
    assert result.exit_code == 0
    assert "an SMTP server (smtp_host) is configured but alert_transport is 'outbox'" in caplog.text
    assert "set FINSENT_ALERT_TRANSPORT=smtp" in caplog.text
    assert "(alert_transport outbox)" in result.stdout
    # Every delivery run says so too, before any alert is due.
    caplog.clear()
    assert run("deliver").exit_code == 0
    assert "an SMTP server (smtp_host) is configured but alert_transport is 'outbox'" in caplog.text
