"""Getting a feed's bytes: HTTP(S) with conditional GET, or a local file.

A fetch never raises for what the web does to us (timeouts, 5xx, 429, oversized or
undecodable bodies): it returns a :class:`FetchResult` whose ``outcome`` and one-line
``error`` say what happened, so one bad feed is recorded and the run goes on.
"""

from __future__ import annotations

import email.utils
import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Retry-After beyond a day is a misconfiguration on the other side, not a plan.
MAX_RETRY_AFTER_S = 24 * 3600.0
KEPT_HEADERS = ("content-type", "content-location", "content-language", "etag", "last-modified")

# Outcomes that are a success for the feed's health.
OK_OUTCOMES = frozenset({"ok", "not_modified", "unchanged"})
# "Moved Permanently" and "Permanent Redirect": the feed's URL is now the target. 302, 303
# and 307 say nothing about the future, so they are followed but never remembered.
PERMANENT_REDIRECTS = frozenset({301, 308})


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
    outcome: (
        str  # ok | not_modified | http_error | rate_limited | timeout | too_large | connection_error | ...
    )
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

    @property
    def ok(self) -> bool:
        return self.outcome in OK_OUTCOMES


class BodyTooLarge(Exception):
    pass


class _Inflater:
    """Decompresses chunk by chunk and refuses to produce more than ``limit`` bytes,
    so a small gzip bomb cannot expand in memory."""

    def __init__(self, encoding: str, limit: int):
        self.limit = limit
        self.size = 0
        encoding = encoding.strip().lower()
        if encoding in ("", "identity", "none"):
            self._d = None
        elif encoding in ("gzip", "x-gzip"):
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._d = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header, auto-detected
        else:
            raise ValueError(f"unsupported Content-Encoding '{encoding}'")

    def feed(self, chunk: bytes) -> bytes:
        if self._d is None:
            out = chunk
        else:
            out = self._d.decompress(chunk, self.limit - self.size + 1)
            if self._d.unconsumed_tail:
                raise BodyTooLarge
        self.size += len(out)
        if self.size > self.limit:
            raise BodyTooLarge
        return out

    def finish(self) -> bytes:
        if self._d is None:
            return b""
        out = self._d.flush(self.limit - self.size + 1)
        self.size += len(out)
        if self.size > self.limit:
            raise BodyTooLarge
        return out


def parse_retry_after(value: str | None, *, reference: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when.timestamp() - reference, 0.0), MAX_RETRY_AFTER_S)


def permanent_location(requested: str, response: httpx.Response) -> str | None:
    """The URL the feed moved to for good, or None.

    Only the leading run of permanent hops counts: in ``A -301-> B -302-> C`` the feed
    lives at B (C is where B happens to send us today), and after a temporary hop nothing
    later is a statement about A.
    """
    hops = response.history
    urls = [str(r.url) for r in hops] + [str(response.url)]
    moved = None
    for i, hop in enumerate(hops):
        if hop.status_code not in PERMANENT_REDIRECTS:
            break
        moved = urls[i + 1]
    return moved if moved is not None and moved != requested else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class Fetcher:
    """One HTTP client (connection pool) shared by the worker threads of a run."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_bytes: int,
        user_agent: str,
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
    ):
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            # Feeds are public: no proxies or netrc credentials picked up from the environment.
            trust_env=False,
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                # Only what _Inflater can bound; httpx would otherwise also offer br/zstd.
                "Accept-Encoding": "gzip, deflate",
            },
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings) -> Fetcher:  # settings: pipeline.settings.Settings
        return cls(
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.fetch_max_bytes,
            user_agent=settings.user_agent,
            max_connections=settings.fetch_concurrency,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, request: FeedRequest) -> FetchResult:
        started = time.monotonic()
        scheme = urlsplit(request.url).scheme.lower()
        if scheme in ("http", "https"):
            result = self._fetch_http(request, started)
        else:
            result = self._fetch_file(request)
        result.duration_ms = int((time.monotonic() - started) * 1000)
        if result.body is not None:
            result.size = len(result.body)
        return result

    # -- local files (demo, tests, feeds saved by other tools) ---------------------------
    def _fetch_file(self, request: FeedRequest) -> FetchResult:
        parts = urlsplit(request.url)
        path = Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(request.url)
        try:
            with path.open("rb") as fh:
                body = fh.read(self.max_bytes + 1)
        except FileNotFoundError:
            return FetchResult("connection_error", error=f"file {path} does not exist")
        except OSError as exc:
            return FetchResult("connection_error", error=f"cannot read {path} ({exc.strerror or exc})")
        if len(body) > self.max_bytes:
            return FetchResult("too_large", error=self._too_large_message())
        return FetchResult("ok", body=body, final_url=request.url)

    # -- HTTP ---------------------------------------------------------------------------
    def _too_large_message(self) -> str:
        return (
            f"body larger than {self.max_bytes} bytes (fetch_max_bytes): "
            "not a normal feed; raise the limit only if you trust it"
        )

    def _fetch_http(self, request: FeedRequest, started: float) -> FetchResult:
        headers = {}
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        deadline = started + self.timeout_s
        try:
            with self._client.stream("GET", request.url, headers=headers) as resp:
                kept = {k: resp.headers[k] for k in KEPT_HEADERS if k in resp.headers}
                status = resp.status_code
                final_url = str(resp.url)
                moved_to = permanent_location(request.url, resp) if status in (200, 304) else None
                if status == 304:
                    return FetchResult(
                        "not_modified", status=status, headers=kept, final_url=final_url, moved_to=moved_to
                    )
                if status in (429, 503):
                    retry = parse_retry_after(resp.headers.get("retry-after"), reference=time.time())
                    wait = f" (Retry-After {retry:.0f} s honoured)" if retry is not None else ""
                    return FetchResult(
                        "rate_limited" if status == 429 else "http_error",
                        status=status,
                        error=f"HTTP {status} {resp.reason_phrase}{wait}",
                        retry_after_s=retry,
                        final_url=final_url,
                    )
                if status >= 400:
                    return FetchResult(
                        "http_error",
                        status=status,
                        error=f"HTTP {status} {resp.reason_phrase}",
                        final_url=final_url,
                    )
                if status != 200:
                    return FetchResult(
                        "http_error",
                        status=status,
                        error=f"HTTP {status} {resp.reason_phrase}: expected 200 with the feed",
                        final_url=final_url,
                    )
                declared = resp.headers.get("content-length", "")
                if (
                    declared.isdigit()
                    and int(declared) > self.max_bytes
                    and "content-encoding" not in resp.headers
                ):
                    return FetchResult("too_large", status=status, error=self._too_large_message())
                try:
                    inflater = _Inflater(resp.headers.get("content-encoding", ""), self.max_bytes)
                except ValueError as exc:
                    return FetchResult("http_error", status=status, error=str(exc))
                chunks: list[bytes] = []
                try:
                    for raw in resp.iter_raw():
                        chunks.append(inflater.feed(raw))
                        if time.monotonic() > deadline:
                            return FetchResult(
                                "timeout",
                                status=status,
                                error=f"body not complete after {self.timeout_s:g} s (fetch_timeout_s)",
                            )
                    chunks.append(inflater.finish())
                except BodyTooLarge:
                    return FetchResult("too_large", status=status, error=self._too_large_message())
                except zlib.error as exc:
                    return FetchResult(
                        "http_error", status=status, error=f"corrupt compressed body ({_one_line(exc)})"
                    )
                return FetchResult(
                    "ok",
                    status=status,
                    body=b"".join(chunks),
                    headers=kept,
                    final_url=final_url,
                    moved_to=moved_to,
                )
        except httpx.TimeoutException:
            return FetchResult("timeout", error=f"no answer within {self.timeout_s:g} s (fetch_timeout_s)")
        except httpx.TooManyRedirects:
            return FetchResult("http_error", error=f"more than {MAX_REDIRECTS} redirects: fix the feed URL")
        except httpx.UnsupportedProtocol as exc:
            return FetchResult("http_error", error=f"redirected to an unsupported URL ({_one_line(exc)})")
        except httpx.TransportError as exc:
            return FetchResult("connection_error", error=f"{type(exc).__name__}: {_one_line(exc)}")
        except httpx.InvalidURL as exc:
            return FetchResult("connection_error", error=f"invalid URL ({_one_line(exc)})")


def utc_now() -> datetime:
    """The one place ingestion reads the clock (entry points only)."""
    return datetime.now(UTC)
