"""Test helpers for ingestion: feed builders and a real HTTP server that misbehaves on cue.

The server is a real ``ThreadingHTTPServer`` on 127.0.0.1 (no mocked transport), so the
fetcher's timeouts, redirects, compression and conditional GET are exercised for real.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def rss_item(
    n: int | str,
    title: str | None = None,
    *,
    guid: str | None = None,
    link: str | None = None,
    when: datetime | None = None,
    description: str | None = None,
) -> str:
    title = f"Acme Corp reports record quarterly revenue, item {n}" if title is None else title
    parts = [f"<title>{escape(title)}</title>"]
    parts.append(f"<link>{escape(link or f'https://news.example.com/a/{n}?utm_source=rss')}</link>")
    if guid != "":
        parts.append(f'<guid isPermaLink="false">{escape(guid or str(n))}</guid>')
    if when is not None:
        parts.append(f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>")
    if description is not None:
        parts.append(f"<description>{escape(description)}</description>")
    return "<item>" + "".join(parts) + "</item>"


SY_NS = "http://purl.org/rss/1.0/modules/syndication/"


def rss(
    items: list[str] | str,
    *,
    title: str = "Example Markets",
    language: str | None = "en-us",
    channel_extra: str = "",
) -> bytes:
    """An RSS 2.0 feed; ``channel_extra`` is raw XML for the channel (``<ttl>``, ``sy:*``)."""
    body = "".join(items) if isinstance(items, list) else items
    lang = f"<language>{language}</language>" if language else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" xmlns:sy="{SY_NS}"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example.com/</link>"
        f"<description>Test feed</description>{lang}{channel_extra}{body}</channel></rss>"
    ).encode()


def rss_feed(count: int, *, start: int = 0, when: datetime = NOW, prefix: str = "item", **kw) -> bytes:
    items = [
        rss_item(
            f"{prefix}-{i}",
            f"{prefix.title()} story number {i} moves the markets today",
            guid=f"{prefix}-{i}",
            when=when - timedelta(minutes=i),
        )
        for i in range(start, start + count)
    ]
    return rss(items, **kw)


def atom(entries: list[dict], *, title: str = "Example Atom", lang: str = "en") -> bytes:
    out = []
    for e in entries:
        out.append(
            "<entry>"
            f"<id>{escape(e['id'])}</id><title>{escape(e['title'])}</title>"
            f'<link href="{escape(e.get("link", "https://atom.example.com/" + e["id"]))}"/>'
            f"<updated>{e['when'].strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>"
            f"<summary>{escape(e.get('summary', ''))}</summary>"
            "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">'
        f"<title>{escape(title)}</title><id>urn:test:{escape(title)}</id>"
        f"<updated>{NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>{''.join(out)}</feed>"
    ).encode()


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False
    raw_gzip: bytes | None = None  # a pre-compressed body sent as-is (gzip bombs)
    delay_s: float = 0.0
    drip_s: float = 0.0  # pause between 1 KiB chunks of the body
    header_drip_s: float = 0.0  # pause before each of 60 filler headers (a slow-headers server)
    redirect_to: str | None = None
    redirect_status: int = 302  # 301 / 308 permanent, 302 / 303 / 307 temporary
    honour_conditional: bool = True
    hits: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)


class FeedServer:
    """Serves routes on 127.0.0.1; change ``routes`` between requests to script a scenario."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, body: bytes = b"", **kw) -> str:
        self.routes[path] = Route(body=body, **kw)
        return self.base + path

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(h.path.split("?")[0])
        if route is None:
            self._send(h, 404, b"not found", {"Content-Type": "text/plain"})
            return
        route.hits += 1
        route.seen_headers.append({k.lower(): v for k, v in h.headers.items()})
        if route.delay_s:
            time.sleep(route.delay_s)
        if route.redirect_to is not None:
            self._send(h, route.redirect_status, b"", {"Location": route.redirect_to})
            return
        headers = {"Content-Type": route.content_type, **route.headers}
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.honour_conditional and route.status == 200:
            inm, ims = h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since")
            if (route.etag and inm == route.etag) or (
                route.last_modified and not route.etag and ims == route.last_modified
            ):
                self._send(h, 304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
                return
        body = route.body
        if route.raw_gzip is not None:
            body = route.raw_gzip
            headers["Content-Encoding"] = "gzip"
        elif route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(h, route.status, body, headers, drip_s=route.drip_s, header_drip_s=route.header_drip_s)

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        drip_s: float = 0.0,
        header_drip_s: float = 0.0,
    ) -> None:
        try:
            h.send_response(status)
            if header_drip_s:
                h.flush_headers()
                for i in range(60):
                    time.sleep(header_drip_s)
                    h.wfile.write(f"X-Pad-{i}: x\r\n".encode())
                    h.wfile.flush()
            for k, v in headers.items():
                h.send_header(k, v)
            if status != 304:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if status == 304 or not body:
                return
            if drip_s:
                for i in range(0, len(body), 1024):
                    h.wfile.write(body[i : i + 1024])
                    h.wfile.flush()
                    time.sleep(drip_s)
            else:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose (size cap, timeout)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(name="feed_server")
def feed_server_fixture() -> Iterator[FeedServer]:
    """A FeedServer for one test (import ``feed_server_fixture`` into the test module)."""
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)
