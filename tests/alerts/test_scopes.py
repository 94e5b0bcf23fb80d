"""Resolving the scope a silence names: exact keys pass, ids and case are resolved, typos warned."""

from __future__ import annotations

import pytest
from alerts_helpers import NOW, add_article, add_feed

from pipeline.alerts.scopes import resolve_scope_key


@pytest.fixture
def conn(db):
    with db.transaction() as s:
        wire = add_feed(s, "MarketWire Financial News", tags=["markets", "us"])  # stored folded
        add_feed(s, "Daily Brief", tags=["markets"])
        add_article(s, wire, published_at=NOW, tickers=["VLTA", "ACME"])
    with db.engine.connect() as connection:
        yield connection, wire


def test_known_keys_pass_unchanged(conn) -> None:
    c, _ = conn
    assert resolve_scope_key(c, "ticker", "VLTA").key == "VLTA"
    brief = resolve_scope_key(c, "source", "Daily Brief")
    assert (brief.key, brief.note, brief.warning) == ("Daily Brief", None, None)
    assert resolve_scope_key(c, "tag", "us").note is None
    assert resolve_scope_key(c, "market", "").key == ""


def test_a_feed_id_or_another_case_becomes_the_source_alerts_carry(conn) -> None:
    c, wire = conn
    by_id = resolve_scope_key(c, "source", str(wire))
    assert (
        by_id.key == "MarketWire Financial News"
        and by_id.note == f"feed #{wire} is source 'MarketWire Financial News'"
    )
    assert resolve_scope_key(c, "source", f"#{wire}") == by_id  # as `feeds list` writes ids
    by_case = resolve_scope_key(c, "source", "marketwire financial news")
    assert by_case.key == "MarketWire Financial News" and by_case.warning is None
    upper = resolve_scope_key(c, "tag", " US ")
    assert (upper.key, upper.note, upper.warning) == ("us", "matched tag 'us'", None)
    # A tag no feed carries yet is kept folded, so it mutes the tag once a feed has it.
    ahead = resolve_scope_key(c, "tag", "Energy")
    assert ahead.key == "energy" and "no feed has tag 'energy' yet" in ahead.warning


@pytest.mark.parametrize(
    ("kind", "key", "warning"),
    [
        ("ticker", "VLAT", "no article has mentioned ticker 'VLAT' yet (did you mean 'VLTA'?)"),
        (
            "source",
            "MarketWire News",
            "no feed is source 'MarketWire News' yet (did you mean 'MarketWire Financial News'?)",
        ),
        ("tag", "market", "no feed has tag 'market' yet (did you mean 'markets'?)"),
        ("tag", "zzz", "no feed has tag 'zzz' yet: this silence"),
    ],
)
def test_an_unknown_key_is_kept_with_a_warning(conn, kind, key, warning) -> None:
    c, _ = conn
    resolved = resolve_scope_key(c, kind, key)
    assert resolved.key == key and warning in resolved.warning
    assert "mutes it only once its alerts exist" in resolved.warning
