"""HTTP(S) feeds: conditional GET, redirects (a permanent one moves the feed), bounded
and decompressed bodies, Retry-After.

A fetch never raises for what the web does to us (timeouts, 5xx, 429, oversized or
undecodable bodies): it returns a FetchResult whose ``outcome`` and one-line ``error``
say what happened, so one bad feed is recorded and the run goes on.
"""

from __future__ import annotations

import email.utils
import time
import zlib
from datetime import UTC
from urllib.parse import urlsplit, urlunsplit

import httpx

from pipeline.errors import ConfigError
from pipeline.ingest.records import FeedRequest, FetchResult
from pipeline.ingest.sources.base import FeedSource, FetchLimits

__all__ = ["BodyTooLarge", "HttpSource", "Inflater", "parse_retry_after", "permanent_location"]

MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Retry-After beyond a day is a misconfiguration on the other side, not a plan.
MAX_RETRY_AFTER_S = 24 * 3600.0
KEPT_HEADERS = ("content-type", "content-location", "content-language", "etag", "last-modified")
# "Moved Permanently" and "Permanent Redirect": the feed's URL is now the target. 302, 303
# and 307 say nothing about the future, so they are followed but never remembered.
PERMANENT_REDIRECTS = frozenset({301, 308})


VALIDATORS = ("etag", "last-modified")
MAX_VALIDATOR_CHARS = 1024


def sendable(value: str | None) -> bool:
    """Whether a stored ETag / Last-Modified can go back in a request header (printable
    ASCII, of a sane length): a broken one from a server ("été 2026") is ignored, not resent."""
    return bool(value) and len(value) <= MAX_VALIDATOR_CHARS and value.isascii() and value.isprintable()


class BodyTooLarge(Exception):
    pass


class Inflater:
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


class HttpSource(FeedSource):
    """http:// and https:// feeds, over one connection pool shared by the run's threads."""

    kind = "http"

    def __init__(self, limits: FetchLimits) -> None:
        super().__init__(limits)
        self._client = httpx.Client(
            timeout=httpx.Timeout(limits.timeout_s),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            # Feeds are public: no proxies or netrc credentials picked up from the environment.
            trust_env=False,
            headers={
                "User-Agent": limits.user_agent,
                "Accept": ACCEPT,
                # Only what Inflater can bound; httpx would otherwise also offer br/zstd.
                "Accept-Encoding": "gzip, deflate",
            },
            limits=httpx.Limits(
                max_connections=limits.max_connections, max_keepalive_connections=limits.max_connections
            ),
            transport=limits.transport,
        )

    @classmethod
    def claims(cls, location: str) -> bool:
        try:
            return urlsplit(location.strip()).scheme.lower() in ("http", "https")
        except ValueError:  # "http://[::1": no kind's (source_for says why)
            return False

    @classmethod
    def location(cls, raw: str) -> str:
        value = raw.strip()
        if not urlsplit(value).hostname:
            raise ConfigError(f"feed URL '{raw}' has no host: use https://host/path")
        if any(c.isspace() or ord(c) < 32 for c in value):
            raise ConfigError(f"feed URL '{raw}' holds a space or a control character: write a space as %20")
        return cls.canonical(value)

    @classmethod
    def canonical(cls, stored: str) -> str:
        return _canonical_http(urlsplit(stored))

    def close(self) -> None:
        self._client.close()

    def fetch(self, request: FeedRequest) -> FetchResult:
        return self._get(request, time.monotonic())

    def _get(self, request: FeedRequest, started: float) -> FetchResult:
        headers = {}
        if sendable(request.etag):
            headers["If-None-Match"] = request.etag
        if sendable(request.last_modified):
            headers["If-Modified-Since"] = request.last_modified
        timeout_s = self.limits.timeout_s
        deadline = started + timeout_s
        try:
            with self._client.stream("GET", request.url, headers=headers) as resp:
                kept = {k: resp.headers[k] for k in KEPT_HEADERS if k in resp.headers}
                # A validator we could not send back (non-ASCII, absurdly long) is dropped
                # rather than stored: sent later, it would fail every fetch of the feed.
                kept = {k: v for k, v in kept.items() if k not in VALIDATORS or sendable(v)}
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
                    and int(declared) > self.limits.max_bytes
                    and "content-encoding" not in resp.headers
                ):
                    return FetchResult("too_large", status=status, error=self.limits.too_large_message())
                try:
                    inflater = Inflater(resp.headers.get("content-encoding", ""), self.limits.max_bytes)
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
                                error=f"body not complete after {timeout_s:g} s (fetch_timeout_s)",
                            )
                    chunks.append(inflater.finish())
                except BodyTooLarge:
                    return FetchResult("too_large", status=status, error=self.limits.too_large_message())
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
            return FetchResult(
                "timeout", error=f"no answer within {self.limits.timeout_s:g} s (fetch_timeout_s)"
            )
        except httpx.TooManyRedirects:
            return FetchResult("http_error", error=f"more than {MAX_REDIRECTS} redirects: fix the feed URL")
        except httpx.UnsupportedProtocol as exc:
            return FetchResult("http_error", error=f"redirected to an unsupported URL ({_one_line(exc)})")
        except httpx.TransportError as exc:
            return FetchResult("connection_error", error=f"{type(exc).__name__}: {_one_line(exc)}")
        except httpx.InvalidURL as exc:
            return FetchResult("connection_error", error=f"invalid URL ({_one_line(exc)})")


def _canonical_http(parts) -> str:
    """The URL with its scheme and host lower-cased and a default port dropped (they name
    the same feed); path and query are kept as given, since servers may tell case apart."""
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"feed URL '{urlunsplit(parts)}' has an invalid port") from None
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


SOURCE = HttpSource
