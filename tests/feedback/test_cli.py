"""``finsent feedback list|export`` on a real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner
from trends_helpers import add_article, add_feed

from pipeline.cli import cli
from pipeline.db.engine import Database
from pipeline.feedback import record

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def run(database_url: str, *args: str):
    env = {"FINSENT_DATABASE_URL": database_url}
    return CliRunner().invoke(cli, ["feedback", *args], env=env)


def test_export_with_nothing_stored_is_empty_and_succeeds(db: Database, database_url: str) -> None:
    result = run(database_url, "export")
    assert result.exit_code == 0 and result.stdout == ""
    csv_out = run(database_url, "export", "--format", "csv")
    assert csv_out.exit_code == 0 and csv_out.stdout.startswith("id,article_id,ticker,label")
    listed = run(database_url, "list")
    assert listed.exit_code == 0 and "no corrections" in listed.stdout


def test_list_and_export_since(db: Database, database_url: str) -> None:
    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        old = add_article(s, feed, "a1", "Acme recalls widgets", NOW, tickers=("ACME",))
        new = add_article(s, feed, "a2", "Beta wins a contract", NOW, tickers=("BETA",))
        record(s, old, label="negative", who="ann", ticker="ACME", now=datetime(2020, 1, 1, tzinfo=UTC))
        record(s, new, label="positive", who="bob", now=NOW)
    listed = run(database_url, "list")
    assert (
        listed.exit_code == 0
        and "Acme recalls widgets" in listed.stdout
        and "2 correction(s)" in listed.stdout
    )
    exported = run(database_url, "export", "--since", "2026-01-01")
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert exported.exit_code == 0 and [r["title"] for r in rows] == ["Beta wins a contract"]
    bad = run(database_url, "export", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "--since" in bad.stderr and len(bad.stderr.strip().splitlines()) <= 3


def test_remove_withdraws_corrections_and_an_unknown_id_is_one_line(db: Database, database_url: str) -> None:
    with db.transaction() as s:
        feed = add_feed(s, "https://news.example/rss", "Wire")
        article = add_article(s, feed, "a1", "Acme recalls widgets", NOW, tickers=("ACME",))
        ann = record(s, article, label="negative", who="ann", ticker="ACME", now=NOW)
        bob = record(s, article, label="positive", who="bob", now=NOW)
    unknown = run(database_url, "remove", str(ann.correction_id), "999999")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == (
        "finsent: error: no correction #999999: nothing removed (`finsent feedback list` shows the ids)"
    )
    removed = run(database_url, "remove", str(ann.correction_id))
    assert removed.exit_code == 0
    assert (
        f"removed correction #{ann.correction_id}: article {article} for ACME negative, by ann"
        in removed.stdout
    )
    exported = [json.loads(line) for line in run(database_url, "export").stdout.splitlines()]
    assert [r["id"] for r in exported] == [bob.correction_id]
    assert run(database_url, "remove", "0").exit_code == 2
    huge = run(database_url, "remove", str(2**63))  # past the id column: a usage error, not a traceback
    assert huge.exit_code == 2 and "Traceback" not in huge.output
