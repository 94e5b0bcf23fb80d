"""HTTP(S) feeds: conditional GET, redirects (a permanent one moves the feed), bounded
and decompressed bodies, Retry-After.

A fetch never raises for what the web does to us (timeouts, 5xx, 429, oversized or
undecodable bodies): it returns a FetchResult whose ``outcome`` and one-line ``error``
say what happened, so one bad feed is recorded and the run goes on.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
import zlib
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from pipeline.errors import ConfigError
from pipeline.ingest.records import FeedRequest, FetchResult
from pipeline.ingest.sources.base import FeedSource, FetchLimits

__all__ = ["BodyTooLarge", "HttpSource", "Inflater", "parse_retry_after", "permanent_location"]

log = logging.getLogger(__name__)

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


GZIP_MAGIC = b"\x1f\x8b"


class Inflater:
    """Decompresses chunk by chunk and refuses to produce more than ``limit`` bytes,
    so a small gzip bomb cannot expand in memory.

    A gzip body may hold several members one after the other (RFC 1952; what `cat a.gz
    b.gz` makes, and some servers stream): each is inflated in turn, as gzip itself does,
    instead of the body ending silently after the first. Bytes after a member that do not
    start another (NUL padding, garbage) are ignored, as before."""

    def __init__(self, encoding: str, limit: int):
        self.limit = limit
        self.size = 0
        self._rest = b""  # bytes after a finished gzip member, until they show what follows
        self._ignore_rest = False  # the stream ended and what follows is not another member
        # "deflate" is meant to be zlib-wrapped (RFC 9110), but servers (IIS, old PHP) send raw
        # deflate as often: its first two bytes tell which, so they are held until both came.
        self._deflate_start: bytes | None = None
        encoding = encoding.strip().lower()
        self._gzip = encoding in ("gzip", "x-gzip")
        if encoding in ("", "identity", "none"):
            self._d = None
        elif self._gzip:
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._d = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header, auto-detected
            self._deflate_start = b""
        else:
            raise ValueError(f"unsupported Content-Encoding '{encoding}'")

    def feed(self, chunk: bytes) -> bytes:
        out = chunk if self._d is None else self._inflate(chunk)
        self.size += len(out)
        if self.size > self.limit:
            raise BodyTooLarge
        return out

    def _inflate(self, data: bytes) -> bytes:
        assert self._d is not None
        if self._deflate_start is not None:
            data = self._deflate_start + data
            if len(data) < 2:
                self._deflate_start = data
                return b""
            self._deflate_start = None
            if not (_zlib_header(data) or data.startswith(GZIP_MAGIC)):
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no header
        out = b""
        while data and not self._ignore_rest:
            if self._d.eof:  # a stream ended: gzip may go on with another member, deflate not
                self._rest += data
                rest = self._rest.lstrip(b"\0")
                if self._gzip and len(rest) < len(GZIP_MAGIC):
                    return out  # too little to tell yet
                self._rest = b""
                if not (self._gzip and rest.startswith(GZIP_MAGIC)):
                    self._ignore_rest = True
                    return out
                self._d, data = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
            out += self._d.decompress(data, self.limit - self.size - len(out) + 1)
            if self._d.unconsumed_tail or self.size + len(out) > self.limit:
                raise BodyTooLarge
            # Read once, here: what follows the stream's end in this chunk.
            data = self._d.unused_data if self._d.eof else b""
        return out

    def finish(self) -> bytes:
        if self._deflate_start:  # a one-byte body: too short for a header, raw if anything
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            self._d.decompress(self._deflate_start)
        if self._d is None or self._d.eof:
            return b""
        out = self._d.flush(self.limit - self.size + 1)
        self.size += len(out)
        if self.size > self.limit:
            raise BodyTooLarge
        return out


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib header (RFC 1950: method 8, a valid check value)."""
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


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
    if moved is not None:
        # In the feed's canonical form, without a fragment (a Location may carry one; it is
        # never sent): "/feed#top" would be a second URL of the feed at "/feed", past the
        # check that another feed already has it.
        moved = _canonical_http(urlsplit(moved)._replace(fragment=""))
    return moved if moved is not None and moved != requested else None


class _Deadline:
    """The end of the fetch each thread is making, shared with the network streams.

    httpx's timeouts apply to each read: a server that sends its headers (or the steps of a
    redirect chain) a byte a second never trips them, and one fetch could hold a worker,
    and the run with it, for hours. Every connect, TLS handshake, read and write is bounded
    by what is left of ``fetch_timeout_s`` for the whole fetch instead."""

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self, end: float | None) -> None:
        self._local.end = end

    def clamp(self, timeout: float | None) -> float | None:
        end = getattr(self._local, "end", None)
        if end is None:
            return timeout
        left = end - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch's deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._deadline.clamp(timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._deadline.clamp(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, self._deadline.clamp(timeout), socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _deadline_transport(limits: httpx.Limits, deadline: _Deadline) -> httpx.HTTPTransport:
    """httpx's transport with its connection pool's network I/O bounded by ``deadline``.

    httpx does not take a network backend, so the pool it built is given ours (httpcore's
    documented ``network_backend``, set after the fact); if a later httpx moves it, fetches
    keep httpx's per-read timeouts and the test of the deadline fails."""
    transport = httpx.HTTPTransport(limits=limits, trust_env=False)
    pool = getattr(transport, "_pool", None)
    if hasattr(pool, "_network_backend"):
        pool._network_backend = _DeadlineBackend(deadline)
    else:  # pragma: no cover - a later httpx
        log.warning("httpx %s: fetch deadlines apply per read only", httpx.__version__)
    return transport


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class HttpSource(FeedSource):
    """http:// and https:// feeds, over one connection pool shared by the run's threads."""

    kind = "http"

    def __init__(self, limits: FetchLimits) -> None:
        super().__init__(limits)
        self._deadline = _Deadline()
        pool_limits = httpx.Limits(
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_connections
        )
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
            limits=pool_limits,
            transport=limits.transport or _deadline_transport(pool_limits, self._deadline),
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
        deadline = time.monotonic() + self.limits.timeout_s
        self._deadline.start(deadline)
        try:
            return self._get(request, deadline)
        finally:
            self._deadline.start(None)

    def _get(self, request: FeedRequest, deadline: float) -> FetchResult:
        headers = {}
        if sendable(request.etag):
            headers["If-None-Match"] = request.etag
        if sendable(request.last_modified):
            headers["If-Modified-Since"] = request.last_modified
        timeout_s = self.limits.timeout_s
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
                late = FetchResult(
                    "timeout",
                    status=status,
                    error=f"body not complete after {timeout_s:g} s (fetch_timeout_s)",
                )
                try:
                    for raw in resp.iter_raw():
                        chunks.append(inflater.feed(raw))
                        if time.monotonic() > deadline:
                            return late
                    chunks.append(inflater.finish())
                except httpx.TimeoutException:  # a read the fetch's deadline cut short
                    return late
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
                "timeout", error=f"no complete answer within {self.limits.timeout_s:g} s (fetch_timeout_s)"
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
