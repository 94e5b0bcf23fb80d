"""The records the ingest stages hand each other."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.ingest.records import FeedRequest, FeedWork, FetchResult


def test_a_feeds_messages_are_one_plain_line_whatever_the_server_sent():
    # A declared charset or a reason phrase quoted in a message reaches the terminal (the run's
    # table, `feeds list`) and the database: no escape sequence, no line break survives.
    work = FeedWork(
        FeedRequest(feed_id=1, url="https://x.example/feed"),
        FetchResult("http_error"),
        datetime(2026, 12, 7, tzinfo=UTC),
        "http_error",
        error="HTTP 500 \x1b]0;owned\x07\x1b[31mRED\r\nX-Injected: 1",
        warning="encoding '\x1b[2Jx' unknown",
    )
    assert work.error == "HTTP 500 ]0;owned[31mRED X-Injected: 1"
    assert work.warning == "encoding '[2Jx' unknown"
    assert FeedWork(work.request, work.fetch, work.started_at, "ok").error is None
