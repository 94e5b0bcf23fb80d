"""Silences, as the command and the alert page set and end them (one module for both)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alerts_helpers import NOW, add_article, add_feed
from sqlalchemy import select

from pipeline.alerts.silences import (
    DURATIONS,
    MAX_REASON,
    NoSuchSilence,
    add_silence,
    add_silence_for,
    end_silences,
)
from pipeline.db.models import AlertSilence


@pytest.fixture
def wire(db) -> int:
    with db.transaction() as s:
        feed = add_feed(s, "Wire")
        add_article(s, feed, published_at=NOW, tickers=["VLTA"])
    return feed


def _rows(db) -> list[AlertSilence]:
    with db.session() as s:
        return list(s.scalars(select(AlertSilence).order_by(AlertSilence.id)))


def test_a_silence_resolves_its_key_like_the_alerts_do(db, wire):
    with db.transaction() as s:
        by_id = add_silence(s, "source", str(wire), ends_at=NOW + timedelta(hours=2), reason=None, now=NOW)
        typo = add_silence(s, "ticker", "VLAT", ends_at=NOW + timedelta(hours=2), reason=" ", now=NOW)
    assert (by_id.scope_key, by_id.note) == ("Wire", f"feed #{wire} is source 'Wire'")
    assert typo.scope_key == "VLAT" and "did you mean 'VLTA'" in (typo.warning or "")
    rows = _rows(db)
    assert [(r.scope_type, r.scope_key, r.reason) for r in rows] == [
        ("source", "Wire", None),
        ("ticker", "VLAT", None),
    ]
    assert rows[0].starts_at == NOW and rows[0].ends_at == NOW + timedelta(hours=2)


def test_the_web_offers_fixed_lengths_and_cuts_long_reasons(db, wire):
    with db.transaction() as s:
        made = add_silence_for(s, "ticker", "VLTA", duration="4h", reason="x" * 2000, now=NOW)
        with pytest.raises(ValueError, match=r"silence length '5y' is not one of 1h, 4h"):
            add_silence_for(s, "ticker", "VLTA", duration="5y", reason=None, now=NOW)
    assert made.ends_at == NOW + DURATIONS["4h"]
    (row,) = _rows(db)
    assert len(row.reason or "") == MAX_REASON


def test_the_same_silence_asked_for_twice_is_set_once(db, wire):
    # A form posted twice (a double click, a reload) sets one silence.
    with db.transaction() as s:
        first = add_silence_for(s, "ticker", "VLTA", duration="4h", reason="earnings", now=NOW)
        again = add_silence_for(
            s, "ticker", "VLTA", duration="4h", reason="earnings", now=NOW + timedelta(seconds=20)
        )
        other = add_silence_for(s, "ticker", "VLTA", duration="1d", reason="earnings", now=NOW)
        later = add_silence_for(
            s, "ticker", "VLTA", duration="4h", reason="earnings", now=NOW + timedelta(hours=1)
        )
    assert again.silence_id == first.silence_id and again.ends_at == first.ends_at
    assert len({first.silence_id, other.silence_id, later.silence_id}) == 3
    assert len(_rows(db)) == 3


def test_a_silence_must_end_in_the_future(db, wire):
    with db.transaction() as s, pytest.raises(ValueError, match="in the past: give a future time"):
        add_silence(s, "market", "", ends_at=NOW, reason=None, now=NOW)
    assert _rows(db) == []


def test_ending_silences_ends_all_or_none(db, wire):
    with db.transaction() as s:
        first = add_silence(s, "market", "", ends_at=NOW + timedelta(days=1), reason=None, now=NOW)
        over = add_silence(s, "ticker", "VLTA", ends_at=NOW + timedelta(hours=1), reason=None, now=NOW)
    later = NOW + timedelta(hours=3)
    with (
        db.transaction() as s,
        pytest.raises(NoSuchSilence, match=r"no silence #999: `finsent alerts list` shows the active ones"),
    ):
        end_silences(s, [first.silence_id, 999], now=later)
    assert _rows(db)[0].ends_at == NOW + timedelta(days=1)
    with db.transaction() as s:
        ended = end_silences(s, [first.silence_id, over.silence_id, first.silence_id], now=later)
    assert ended == ([first.silence_id], [over.silence_id])
    with db.transaction() as s:  # ending it again ends nothing
        assert end_silences(s, [first.silence_id], now=later + timedelta(minutes=1)) == (
            [],
            [first.silence_id],
        )
    # One already over keeps its end.
    assert [r.ends_at for r in _rows(db)] == [later, NOW + timedelta(hours=1)]
