"""`finsent trends`: tables, charts, no-data messages and one-line usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from trends_helpers import NOW, add_score, clear_trends, seed

from pipeline.cli import cli
from pipeline.trends.queries import parse_since


@pytest.fixture
def run_cli(db, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key in [k for k in os.environ if k.startswith("FINSENT_") and k != "FINSENT_TEST_DATABASE_URL"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("FINSENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINSENT_DATABASE_URL", database_url)
    clear_trends(db)
    seed(db)  # not refreshed: the command brings the rollups up to date itself

    def run(*args: str):
        return CliRunner().invoke(cli, ["trends", *args, "--now", NOW.isoformat()], catch_exceptions=False)

    run.db = db
    yield run
    clear_trends(db)


def test_ticker_by_hour(run_cli) -> None:
    result = run_cli("acme", "--since", "2026-11-20")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ACME sentiment by hour, 2026-11-20 00:00 to 2026-11-20 12:30 UTC (3 hours")
    assert lines[2].split()[:6] == ["2026-11-20", "09:00", "2", "1", "100.0", "0.0"]
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[:5] == ["total", "4", "3", "75.0", "25.0"]
    # One of the three negatives is a syndicated copy: counted once, 2 of 3 first copies.
    assert lines[1].endswith("novel neg%")
    assert total[-1] == "66.7"


def test_json_has_the_tables_numbers_and_headlines(run_cli) -> None:
    result = run_cli("acme", "--since", "2026-11-20", "--json", "--headlines", "2")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["scope"], out["key"], out["by"], out["known"]) == ("ticker", "ACME", "hour", True)
    assert out["since"] == "2026-11-20T00:00:00+00:00" and len(out["rows"]) == 3
    nine = out["rows"][0]
    assert (nine["bucket"], nine["articles"], nine["novel"], nine["negative_share"]) == (
        "2026-11-20T09:00:00+00:00",
        2,
        1,
        1.0,
    )
    total = out["total"]
    assert (total["articles"], total["negative"], total["bucket"]) == (4, 3, None)
    assert total["novel_negative_share"] == pytest.approx(2 / 3)
    assert len(out["headlines"]) == 2 and out["headlines"][0]["label_of"] in ("company", "article")
    nothing = json.loads(run_cli("nosuch", "--json").stdout)
    assert (nothing["rows"], nothing["total"], nothing["known"]) == ([], None, False)


def test_ticker_headlines_carry_the_label_for_that_company(run_cli) -> None:
    with run_cli.db.engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT item_key, id FROM articles")).tuples().all())
    with run_cli.db.transaction() as s:
        add_score(s, ids["a4"], "positive", ticker="ACME")  # the article is neutral overall
        add_score(s, ids["a3"], "positive", ticker="ACME", model="m1")  # not the current model
    result = run_cli("acme", "--since", "2026-11-20")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index(
        'newest headlines, label for ACME ("(article)": no company score, the article\'s label):'
    )
    listed = [line.split() for line in lines[at + 1 :]]
    # First copies only, newest first: a4 (company score), a3 (m2's article label), a1.
    assert [r[2:4] for r in listed] == [
        ["positive", "Acme"],
        ["negative", "(article)"],
        ["negative", "(article)"],
    ]
    # The table counts the company's own label too: a4 is positive for ACME now.
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[:7] == ["total", "4", "3", "75.0", "0.0", "25.0", total[6]]
    none = run_cli("acme", "--since", "2026-11-20", "--headlines", "0")
    assert "newest headlines" not in none.output


def test_the_header_starts_where_the_first_whole_bucket_does(run_cli) -> None:
    # Rollups hold whole hours and days: a table that counts all of 09:00-10:00 must not say
    # it starts at 09:30.
    by_hour = run_cli("acme", "--since", "2026-11-20T09:30")
    assert by_hour.output.splitlines()[0].startswith("ACME sentiment by hour, 2026-11-20 09:00 to")
    by_day = run_cli("acme", "--by", "day", "--since", "2026-11-19T12:00")
    assert by_day.output.splitlines()[0].startswith("ACME sentiment by day, 2026-11-19 00:00 to")


def test_headlines_cover_the_period_the_table_counts(run_cli) -> None:
    # The table counts all of 09:00-10:00 (a1 at 09:10); its headlines must list a1 as well.
    result = run_cli("acme", "--since", "2026-11-20T09:30", "--json")
    out = json.loads(result.stdout)
    assert out["rows"][0]["bucket"] == "2026-11-20T09:00:00+00:00"
    assert [h["title"] for h in out["headlines"]] == [
        "Acme opens new plant",
        "Acme CFO resigns",
        "Acme recalls 2 million widgets",
    ]


def test_market_by_day(run_cli) -> None:
    result = run_cli("--market", "--by", "day", "--since", "2d")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[2:]]
    assert [r[:3] for r in rows[:-1]] == [
        ["2026-11-18", "3", "3"],
        ["2026-11-19", "3", "3"],
        ["2026-11-20", "9", "8"],
    ]
    assert rows[-1][:2] == ["total", "15"]


def test_no_data_is_not_an_error(run_cli) -> None:
    quiet = run_cli("CRUX", "--since", "2h")
    assert quiet.exit_code == 0
    assert quiet.output.strip() == "no data for CRUX since 2026-11-20 10:30 UTC"
    # A time given with another offset is said in UTC, as the message says.
    offset = run_cli("CRUX", "--since", "2026-11-20T05:30-05:00")
    assert offset.output.strip() == "no data for CRUX since 2026-11-20 10:30 UTC"
    unknown = run_cli("$zzzz")
    assert unknown.exit_code == 0
    assert "no data for ZZZZ since 2026-11-13 12:30 UTC (no article has ever mentioned it" in unknown.output
    assert "did you mean" not in unknown.output


def test_a_typo_gets_the_nearest_known_tickers(run_cli) -> None:
    typo = run_cli("ACMW")
    assert typo.exit_code == 0
    assert typo.output.strip().endswith("check the spelling; did you mean ACME?)")


def test_a_company_with_no_news_yet_or_its_name_is_told_apart_from_a_typo(run_cli) -> None:
    # The bundled universe: Microsoft exists, no article names it here.
    msft = run_cli("MSFT").output.strip()
    assert msft.endswith("(MSFT, Microsoft, is in the company universe; no article has mentioned it yet)")
    # Yahoo's class ticker and a company's name point at the ticker to use.
    assert run_cli("BRK-B").output.strip().endswith("the company universe has BRK.B)")
    assert run_cli("Apple").output.strip().endswith("the company universe has AAPL)")


def test_plot_writes_a_png(run_cli, tmp_path: Path) -> None:
    chart = tmp_path / "acme.png"
    result = run_cli("ACME", "--by", "day", "--since", "14d", "--plot", str(chart))
    assert result.exit_code == 0, result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart: {chart}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ACME", "--since", "last week"), "neither a period (7d, 48h, 2w) nor an ISO date"),
        (("ACME", "--since", "2027-01-01"), "is after now"),
        (("ACME", "--since", "0d"), "empty period"),
        (("ACME", "--since", "99999999d"), "reaches back before the year 1"),
        (("ACME", "--since", "99999999999999999999h"), "reaches back before the year 1"),
        (("ACME", "--since", "0001-01-01T00:00+05:00"), "reaches back before the year 1"),
        (("ACME", "--market"), "give a TICKER or --market"),
        ((), "give a TICKER or --market"),
        (("not a ticker",), "is not a ticker"),
        (("ACME", "--plot", "chart.gif"), "must end in .png, .svg, .pdf"),
        (("ACME", "--plot", "/no/such/dir/chart.png"), "folder /no/such/dir does not exist: create it first"),
        (("ACME", "--plot", "/etc/hostname/chart.png"), "folder /etc/hostname is not a folder"),
        (("ACME", "--by", "week"), "'week' is not one of 'hour', 'day'"),
    ],
)
def test_bad_input_is_one_line_usage_error(run_cli, args, message) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finsent: error: "), result.output
    assert message in lines[0]


def test_parse_since_forms() -> None:
    assert parse_since("48h", NOW) == NOW.replace(day=18)
    assert parse_since("2w", NOW) == NOW.replace(day=6)
    assert parse_since("2026-11-13", NOW).isoformat() == "2026-11-13T00:00:00+00:00"
    assert parse_since("2026-11-13T10:00+01:00", NOW).isoformat() == "2026-11-13T10:00:00+01:00"
