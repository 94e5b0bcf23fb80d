"""Getting a feed's bytes: the run's fetcher hands each feed to the source kind that
reads its location (see pipeline/ingest/sources/)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pipeline.errors import ConfigError
from pipeline.ingest.normalise import web_base
from pipeline.ingest.parse import ParsedFeed, resolve_links
from pipeline.ingest.records import OK_OUTCOMES, FeedRequest, FetchResult
from pipeline.ingest.sources import FeedSource, FetchLimits, builtin_sources, source_for

__all__ = ["OK_OUTCOMES", "FeedRequest", "FetchResult", "Fetcher", "utc_now"]

log = logging.getLogger(__name__)


class Fetcher:
    """The source instances of one run (an HTTP connection pool among them), shared by
    its worker threads."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_bytes: int,
        user_agent: str,
        max_connections: int = 16,
        transport=None,  # httpx.BaseTransport, for tests
        sources: Sequence[type[FeedSource]] = (),
    ):
        self.limits = FetchLimits(
            timeout_s=timeout_s,
            max_bytes=max_bytes,
            user_agent=user_agent,
            max_connections=max_connections,
            transport=transport,
        )
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._extra = tuple(sources)
        self._open: dict[type[FeedSource], FeedSource] = {
            kind: kind(self.limits) for kind in (*self._extra, *builtin_sources())
        }

    @classmethod
    def from_settings(cls, settings, sources: Sequence[type[FeedSource]] = ()) -> Fetcher:
        return cls(
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.fetch_max_bytes,
            user_agent=settings.user_agent,
            max_connections=settings.fetch_concurrency,
            sources=sources,
        )

    def close(self) -> None:
        for source in self._open.values():
            source.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def source(self, location: str) -> FeedSource:
        return self._open[source_for(location, self._extra)]

    def fetch(self, request: FeedRequest) -> FetchResult:
        started = time.monotonic()
        try:
            source = self.source(request.url)
        except ConfigError as exc:  # stored before its kind was removed, or edited by hand
            return FetchResult("connection_error", error=str(exc).removeprefix("config: "))
        result = source.fetch(request)
        result.duration_ms = int((time.monotonic() - started) * 1000)
        if result.body is not None:
            result.size = len(result.body)
        return result

    def parse(self, request: FeedRequest, body: bytes, headers: dict[str, str]) -> ParsedFeed:
        parsed = self.source(request.url).parse(body, headers)
        if parsed.link is None:
            # No channel <link> to resolve relative item links against: the feed's own URL
            # is the next best base (an http(s) one only: a file path is none).
            resolve_links(parsed.entries, web_base(request.url))
        return parsed


def utc_now() -> datetime:
    """The one place ingestion reads the clock (entry points only)."""
    return datetime.now(UTC)
