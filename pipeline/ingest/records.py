"""The values that travel through one ingest run, in order: a FeedRequest (what a fetch
needs to know about a feed), a FetchResult (what the source gave), a FeedWork (what a
worker made of it, ready to store) and a FeedOutcome (what was stored, for the report).

Plain values: safe to hand between the worker threads and the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pipeline.companies.linking import EntityMatch
from pipeline.ingest.normalise import ArticleRow, language_tag, one_plain_line

__all__ = ["OK_OUTCOMES", "FeedOutcome", "FeedRequest", "FeedWork", "FetchResult", "Outcome"]


class Outcome(StrEnum):
    """What one attempt at a feed came to (``fetches.outcome`` stores the value)."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"  # 304: the validators matched
    UNCHANGED = "unchanged"  # 200 with the same bytes as last stored
    HTTP_ERROR = "http_error"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    CONNECTION_ERROR = "connection_error"
    EMPTY = "empty"
    UNSAFE_XML = "unsafe_xml"
    NOT_A_FEED = "not_a_feed"
    PARSE_ERROR = "parse_error"
    STORE_ERROR = "store_error"
    INTERNAL_ERROR = "internal_error"

    @property
    def ok(self) -> bool:
        return self in OK_OUTCOMES


# Outcomes that are a success for the feed's health.
OK_OUTCOMES = frozenset({Outcome.OK, Outcome.NOT_MODIFIED, Outcome.UNCHANGED})


@dataclass(frozen=True)
class FeedRequest:
    """What a fetch needs to know about a feed (a plain value: safe across threads)."""

    feed_id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    language: str | None = None
    name: str | None = None
    last_entries: int = 0  # entries in the last body stored (what a 304 re-confirms)
    poll_interval_s: int | None = None  # the feed's stored polling hint (<ttl>, sy:*)


@dataclass
class FetchResult:
    outcome: Outcome
    status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    retry_after_s: float | None = None
    duration_ms: int = 0
    final_url: str | None = None
    size: int | None = None  # body bytes (kept after the body itself is released)
    # Where the feed moved for good: the end of the chain's leading 301/308 hops, set only
    # when the chain ended in a 200 or 304 (a redirect to an error page proves nothing).
    moved_to: str | None = None

    def __post_init__(self) -> None:
        self.outcome = Outcome(self.outcome)  # a plain string is accepted and checked

    @property
    def ok(self) -> bool:
        return self.outcome in OK_OUTCOMES


@dataclass
class FeedWork:
    """What a worker thread made of one feed, ready to store."""

    request: FeedRequest
    fetch: FetchResult
    started_at: datetime
    outcome: Outcome
    error: str | None = None
    warning: str | None = None
    entries: int = 0
    articles: list[ArticleRow] = field(default_factory=list)
    entities: dict[str, list[EntityMatch]] = field(default_factory=dict)
    in_batch_duplicates: int = 0
    body_hash: str | None = None
    feed_title: str | None = None
    feed_language: str | None = None
    poll_interval_s: int | None = None  # the feed's polling hint, when its body was parsed

    def __post_init__(self) -> None:
        self.outcome = Outcome(self.outcome)
        # Messages quote what a server sent (a reason phrase, a declared charset): they are
        # printed in the run's table and `feeds list` and stored, so one plain line each,
        # never a terminal escape sequence or a line break.
        self.error = one_plain_line(self.error) if self.error else self.error
        self.warning = one_plain_line(self.warning) if self.warning else self.warning
        # The rule items' languages follow: a FeedWork made by any source may carry "en\x00",
        # which PostgreSQL refuses (and with it the whole run's commit).
        self.feed_language = language_tag(self.feed_language)


@dataclass
class FeedOutcome:
    """One feed's line in the run's report."""

    feed_id: int
    url: str
    outcome: Outcome
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    entries: int = 0
    error: str | None = None
    warning: str | None = None
    http_status: int | None = None
    name: str | None = None
    next_fetch_at: datetime | None = None

    def __post_init__(self) -> None:
        self.outcome = Outcome(self.outcome)

    @property
    def failed(self) -> bool:
        return self.outcome not in OK_OUTCOMES
