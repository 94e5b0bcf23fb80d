"""The watchlist CSV: what it accepts and the one-line errors for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.companies.watchlist import load_watchlist
from pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watchlist.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_companies_aliases_and_subscribers(tmp_path):
    wl = load_watchlist(
        write(
            tmp_path,
            "\ufeff# my list\nticker,name,aliases,subscribers\n"
            "vlta,Voltara Motors Inc.,Voltara|Voltara EV,a@example.com|b@example.com\n"
            "\nBRK.B,Berkshire Hathaway Inc.,,\n",
        )
    )
    assert wl.tickers() == ["VLTA", "BRK.B"]
    assert wl.subscribers("vlta") == ["a@example.com", "b@example.com"]
    assert wl.subscribers("BRK.B") == [] and wl.subscribers("NOPE") == []
    assert wl.company("VLTA").aliases == ("Voltara", "Voltara EV")
    assert [n for n, _ in wl.company("VLTA").names()] == [
        "Voltara Motors Inc.",
        "Voltara Motors",
        "Voltara",
        "Voltara EV",
    ]
    assert "VLTA" in wl and "X" not in wl


def test_empty_file_is_an_empty_watchlist(tmp_path):
    assert len(load_watchlist(write(tmp_path, "# nothing yet\n"))) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("symbol,company\nX,Y\n", "line 1: header lacks ticker, name"),
        ("ticker,name,industry\nX,Y,Z\n", "unknown column(s) industry"),
        ("ticker,name,exclude\nX,Y,maybe\n", "line 2: exclude 'maybe' of X is not yes or no"),
        ("ticker,name,share_classes\nX,Y,Z\nZ,W,\n", "line 3: ticker Z is listed twice"),
        ("ticker,name\nBAD TICKER,Y\n", "line 2: ticker 'BAD TICKER' is not a ticker"),
        ("ticker,name\nX,Y\nx,Z\n", "line 3: ticker X is listed twice"),
        ("ticker,name,aliases,subscribers\nX,Y,,not-an-email\n", "subscriber 'not-an-email' of X"),
        ("ticker,name,aliases\nX,Y,a,b,c\n", "separate aliases and subscribers with '|'"),
    ],
)
def test_errors_name_the_line_and_the_fix(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_watchlist(write(tmp_path, text))
    assert message in str(err.value) and str(tmp_path) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_watchlist(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("ticker,name\nX,Soci\xe9t\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8"):
        load_watchlist(bad)


def test_a_nameless_row_subscribes_to_the_universe_company_of_that_ticker(tmp_path):
    # "F,,,autos@example.com": Ford is in the universe; retyping its name was required.
    from pipeline.companies.universe import load_universe

    mine = load_watchlist(write(tmp_path, "ticker,name,aliases,subscribers\nF,,,autos@example.com\n"))
    ford = load_universe("sp500", mine).company("F")
    assert (
        ford is not None and ford.name == "Ford Motor Company" and ford.subscribers == ("autos@example.com",)
    )
    # A ticker the universe lacks needs its name, said in one line naming the file.
    unknown = load_watchlist(write(tmp_path, "ticker,name\nZZQX,\n"))
    with pytest.raises(ConfigError) as err:
        load_universe("sp500", unknown)
    assert "ZZQX has no company name, and the universe has no ZZQX" in str(err.value)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="X has no company name"):
        load_watchlist(write(tmp_path, "ticker,name\nX,\n"), what="universe")
