"""Item identity and the copy rule, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from pipeline.ingest.identity import (
    StoredCopy,
    assign_item_keys,
    cluster_roots,
    copy_order,
    match_stored,
    rekeyed,
)
from pipeline.ingest.normalise import normalise_entry

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
HOME = "https://news.example.com/"


def _row(
    title: str, *, link: str | None = HOME, guid: str | None = None, summary: str = "", minutes: int = 60
):
    entry = {
        "title": title,
        "summary": summary,
        "published_parsed": (NOW - timedelta(minutes=minutes)).timetuple(),
    }
    if link is not None:
        entry["link"] = link
    if guid is not None:
        entry["id"] = guid
    return normalise_entry(entry, now=NOW, feed_language=None)


def test_items_sharing_a_link_without_guid_stay_distinct():
    rows = assign_item_keys([_row(f"Acme story number {i} for the markets") for i in range(20)])
    assert len({r.item_key for r in rows}) == 20
    assert all(r.alt_keys == (HOME, f"sha256:{r.content_hash}") for r in rows)


def test_same_link_and_title_with_different_text_stay_distinct_and_true_repeats_collapse():
    rows = assign_item_keys(
        [
            _row("Market update", summary="Stocks rose."),
            _row("Market update", summary="Bonds fell."),
            _row("Market update", summary="Bonds fell."),
        ]
    )
    assert len({r.item_key for r in rows}) == 2


def test_a_unique_link_is_the_key_and_guids_win():
    (alone,) = assign_item_keys([_row("Acme story alone in its feed today", link="https://x.example/a")])
    assert alone.item_key == "https://x.example/a" and len(alone.alt_keys) == 3
    rows = assign_item_keys([_row("One", guid="g1"), _row("Two", guid="g2")])
    assert [r.item_key for r in rows] == ["g1", "g2"] and len(rows[0].alt_keys) == 1
    assert rows[0].alt_keys != ("g1",)


def test_distinct_items_sharing_a_guid_stay_distinct_and_true_repeats_collapse():
    rows = assign_item_keys(
        [
            _row("Acme beats estimates", guid="same", link="https://x.example/1"),
            _row("Globex cuts guidance", guid="same", link="https://x.example/2"),
            _row("Initech hires a new chief", guid="same", link="https://x.example/3"),
            _row("Initech hires a new chief", guid="same", link="https://x.example/3"),
            _row("Market update", guid="same", link=HOME, summary="Stocks rose."),
            _row("Market update", guid="same", link=HOME, summary="Bonds fell."),
        ]
    )
    # Same guid, link and title with other text: one item edited (the last copy stands).
    assert len({r.item_key for r in rows}) == 4
    assert all(r.alt_keys == ("same",) for r in rows)


def test_one_item_listed_twice_with_edited_text_stays_one_item():
    first = _row("Acme beats estimates", guid="g", link="https://x.example/1", summary="EPS $1.")
    edited = _row("Acme beats estimates", guid="g", link="https://x.example/1", summary="EPS $1.10.")
    rows = assign_item_keys([first, edited])
    assert {r.item_key for r in rows} == {"g"}
    stored = {(1, "g"): SimpleNamespace(id=7, title_key=first.title_key)}
    assert [f.id for f in match_stored([(1, r) for r in rows], stored)] == [7, 7]


def test_a_story_stored_under_its_guid_is_found_when_the_guid_becomes_shared_and_back():
    acme = _row("Acme beats estimates", guid="same", link="https://x.example/1")
    (alone,) = assign_item_keys([acme])
    stored = {(1, "same"): SimpleNamespace(id=7, title_key=acme.title_key)}
    shared = assign_item_keys([acme, _row("Globex cuts guidance", guid="same", link="https://x.example/2")])
    found = match_stored([(1, r) for r in shared], stored)
    assert [getattr(f, "id", None) for f in found] == [7, None]  # Globex is a new story
    # And back: stored under guid + link + title, now the guid's only item.
    stored = {(1, shared[0].item_key): SimpleNamespace(id=8, title_key=acme.title_key)}
    assert match_stored([(1, alone)], stored)[0].id == 8


def test_a_story_that_rotates_onto_a_guid_or_link_another_story_was_stored_under_is_itself():
    """A stored under the plain guid (or link); then A and B share it (B stored under the
    shared form); then A leaves the feed and B is alone under the plain form: B is B's row,
    not an edit of A's."""
    for kind in ("guid", "link"):
        extra = {"guid": "same"} if kind == "guid" else {}
        a = _row("Alpha Corp wins big contract", link="https://x.example/a" if extra else HOME, **extra)
        b = _row("Beta Inc cuts jobs", link="https://x.example/b" if extra else HOME, **extra)
        (a_alone,) = assign_item_keys([a])
        _, b_shared = assign_item_keys([a, b])
        (b_alone,) = assign_item_keys([b])
        assert b_alone.item_key == a_alone.item_key  # the plain form: where A's row is
        stored = {
            (1, a_alone.item_key): SimpleNamespace(id=1, title_key=a.title_key),
            (1, b_shared.item_key): SimpleNamespace(id=2, title_key=b.title_key),
        }
        assert match_stored([(1, b_alone)], stored)[0].id == 2, kind
        # A genuine edit of the title under the plain key (no row of the new title) stays an edit.
        edited = replace(b_alone, alt_keys=("nothing stored here",))
        assert match_stored([(1, edited)], stored)[0].id == 1, kind


def test_a_story_that_shared_link_and_title_with_other_text_is_itself_when_alone_again():
    """X and Y share link and title with different text (each keyed by its content), then X is
    alone: X is X's row, not a new article (it was stored twice), and Y's row is not X."""
    x = _row("Markets live: stocks today", summary="Dow opens higher on earnings.")
    y = _row("Markets live: stocks today", summary="Oil slides as supply rises.")
    x_shared, y_shared = assign_item_keys([x, y])
    (x_alone,) = assign_item_keys([x])
    stored = {
        (1, x_shared.item_key): SimpleNamespace(id=1, title_key=x.title_key),
        (1, y_shared.item_key): SimpleNamespace(id=2, title_key=y.title_key),
    }
    assert match_stored([(1, x_alone)], stored)[0].id == 1


def test_an_item_whose_link_was_unusable_before_is_its_row_under_the_content_key():
    """Stored with no link (a relative link, before they were resolved: the content hash was
    its key), now with a link: the same row, not a second article."""
    linkless = normalise_entry(
        {"title": "Acme wins a contract", "summary": "Details.", "published_parsed": NOW.timetuple()},
        now=NOW,
        feed_language=None,
    )
    (linked,) = assign_item_keys(
        [_row("Acme wins a contract", summary="Details.", link="https://x.example/a")]
    )
    stored = {(1, linkless.item_key): SimpleNamespace(id=5, title_key=linkless.title_key)}
    assert match_stored([(1, linked)], stored)[0].id == 5


def test_a_link_stored_before_its_unsafe_characters_were_encoded_is_still_its_row():
    """Stored when canonical_url kept a space or "|" in the path as it came: encoded now, the
    item must find that row, not become a second article."""
    old_link = "https://news.example.com/a/Acme beats|Q3"
    for shared in (False, True):
        rows = [_row("Acme beats estimates in Q3", link=old_link)]
        if shared:  # the link shared with another story: keyed by link and title
            rows.append(_row("Globex misses estimates", link=old_link))
        item = assign_item_keys(rows)[0]
        assert item.item_key != old_link and "%20" in item.item_key
        old_key = old_link if not shared else f"{old_link}\n{item.title}"
        stored = {(1, old_key): SimpleNamespace(id=9, title_key=item.title_key)}
        assert match_stored([(1, item)], stored)[0].id == 9, shared


def test_links_that_differ_late_are_hashed_not_cut():
    base = "https://x.example/a?q=" + "x" * 2100
    rows = assign_item_keys([_row(f"Story {i} about Acme and others", link=f"{base}{i}") for i in range(5)])
    assert len({r.item_key for r in rows}) == 5
    assert all(r.item_key.startswith("sha256:") and len(r.url) == 2000 for r in rows)


def test_a_row_stored_under_the_other_key_form_is_the_same_item():
    a = _row("Acme wins a large contract in Ohio")
    (alone,) = assign_item_keys([a])
    stored = {(1, HOME): SimpleNamespace(id=7, title_key=a.title_key)}
    shared = assign_item_keys([a, _row("Acme opens a plant in Texas next year")])
    found = match_stored([(1, r) for r in shared], stored)
    assert [getattr(f, "id", None) for f in found] == [7, None]  # the other title is a new item
    # And back: stored under link + title, now alone in the fetch.
    stored = {(1, shared[0].item_key): SimpleNamespace(id=8, title_key=a.title_key)}
    assert match_stored([(1, alone)], stored)[0].id == 8


def test_copy_order_breaks_publish_time_ties_by_feed_then_item():
    story = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    x, y = _row(story, guid="b"), _row(story, guid="a")
    order = sorted([(2, x), (1, x), (1, y)], key=lambda fa: copy_order(*fa))
    assert [(f, a.item_key) for f, a in order] == [(1, "a"), (1, "b"), (2, "b")]
    roots = cluster_roots([a for _, a in order], [10, 11, 12], {}, timedelta(hours=48))
    assert roots == [10, 10, 10]


def test_cluster_roots_prefers_a_stored_copy_and_respects_the_window():
    story = "Acme Corp recalls 40,000 industrial drills over overheating batteries"
    new = _row(story, guid="n")
    near = StoredCopy(new.published_at - timedelta(hours=1), "h", 3)
    far = StoredCopy(new.published_at - timedelta(days=5), "h", 1)
    assert cluster_roots([new], [20], {new.title_key: [far, near]}, timedelta(hours=48)) == [3]
    assert cluster_roots([new], [20], {new.title_key: [far]}, timedelta(hours=48)) == [20]
    generic = _row("Market update", guid="m", summary="Stocks rose.")
    other = replace(generic, content_hash="other")
    assert cluster_roots([generic, other], [30, 31], {}, timedelta(hours=48)) == [30, 31]


def _stored(row, *, id_: int, key: str, minutes: int = 0):
    return SimpleNamespace(
        id=id_,
        item_key=key,
        url=row.url,
        content_hash=row.content_hash,
        published_at=row.published_at - timedelta(minutes=minutes),
    )


def test_a_stored_item_under_an_old_guid_is_the_new_one_only_when_all_else_matches():
    link = "https://news.example.com/acme-q3"
    new = _row("Acme reports record revenue", link=link, guid="cms-2002", summary="Up 12%.")
    old = _stored(new, id_=7, key="cms-1001")
    window = timedelta(hours=48)
    stored = {(1, new.title_key): [old]}
    assert rekeyed([(1, new)], stored, {1: {"cms-2002"}}, window) == [old]
    # Still in the feed under its own key: two items. Another feed, other text, another
    # link, too long ago, or no guid: not the same item.
    assert rekeyed([(1, new)], stored, {1: {"cms-2002", "cms-1001"}}, window) == [None]
    assert rekeyed([(2, new)], stored, {2: {"cms-2002"}}, window) == [None]
    edited = _row("Acme reports record revenue", link=link, guid="cms-2002", summary="Up 13%.")
    assert rekeyed([(1, edited)], stored, {1: set()}, window) == [None]
    moved = _row("Acme reports record revenue", link=link + "-2", guid="cms-2002", summary="Up 12%.")
    assert rekeyed([(1, moved)], stored, {1: set()}, window) == [None]
    late = {(1, new.title_key): [_stored(new, id_=7, key="cms-1001", minutes=60 * 49)]}
    assert rekeyed([(1, new)], late, {1: set()}, window) == [None]
    unkeyed = _row("Acme reports record revenue", link=link, summary="Up 12%.")
    assert rekeyed([(1, unkeyed)], {(1, unkeyed.title_key): [old]}, {1: set()}, window) == [None]
    # One stored row is one item: a second new copy in the same fetch is not it too.
    assert rekeyed([(1, new), (1, new)], stored, {1: set()}, window) == [old, None]
