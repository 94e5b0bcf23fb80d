"""What every feed source kind gives: which locations it claims, their canonical form,
a fetch that never raises for what the outside world does, and a parse into one
normalised feed object (:class:`~pipeline.ingest.parse.ParsedFeed`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import httpx

from pipeline.ingest.parse import ParsedFeed, parse_feed
from pipeline.ingest.records import FeedRequest, FetchResult

__all__ = ["FeedSource", "FetchLimits"]


@dataclass(frozen=True)
class FetchLimits:
    """The run's limits, shared by every source (from the fetch_* settings)."""

    timeout_s: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    user_agent: str = "FinSent"
    max_connections: int = 16
    transport: httpx.BaseTransport | None = None  # tests only: an in-process HTTP transport

    def too_large_message(self) -> str:
        return (
            f"body larger than {self.max_bytes} bytes (fetch_max_bytes): "
            "not a normal feed; raise the limit only if you trust it"
        )


class FeedSource:
    """One kind of feed location. Subclass it in one module of this package (exporting it
    as ``SOURCE``) or pass it to ``ingest(sources=...)`` / ``add_feeds(sources=...)``.

    Class methods work on locations alone (``feeds add``); an instance lives for one run,
    made with the run's limits, and is used from several worker threads at once."""

    kind: ClassVar[str]

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits

    @classmethod
    def claims(cls, location: str) -> bool:
        """Whether this kind reads ``location`` (checked in order; the first one wins)."""
        raise NotImplementedError

    @classmethod
    def location(cls, raw: str) -> str:
        """The canonical form of a location a user gave; ConfigError if it is unusable."""
        return cls.canonical(raw)

    @classmethod
    def canonical(cls, stored: str) -> str:
        """The canonical form of a stored location, without any I/O (one feed, one row)."""
        return stored

    @classmethod
    def check(cls, location: str) -> None:
        """A cheap check before a new feed is stored (ConfigError); nothing by default."""

    def fetch(self, request: FeedRequest) -> FetchResult:
        """The feed's bytes, or an outcome and a one-line error: never raises for what the
        outside world does (timeouts, refusals, oversized bodies)."""
        raise NotImplementedError

    def parse(self, body: bytes, headers: dict[str, str]) -> ParsedFeed:
        """The body as one normalised feed (RSS / Atom / RDF unless overridden). Raises
        FeedParseError for a body that is no usable feed."""
        return parse_feed(body, headers=headers)

    def close(self) -> None:
        """Release what the run held (connection pools)."""
