"""Builders for alerting tests: real rows in the test database, a real SMTP server."""

from __future__ import annotations

import itertools
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.orm import Session

from pipeline.db.models import Article, ArticleEntity, Feed, SentimentScore

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
MODEL = "test-model-v1"
_serial = itertools.count(1)


def add_feed(session: Session, name: str = "Wire", tags: Iterable[str] = ()) -> int:
    feed = Feed(
        url=f"https://feeds.example.com/{name.lower().replace(' ', '-')}.xml", name=name, tags=list(tags)
    )
    session.add(feed)
    session.flush()
    return feed.id


def add_article(
    session: Session,
    feed_id: int,
    *,
    published_at: datetime,
    label: str = "neutral",
    tickers: Iterable[str] = (),
    first_seen_at: datetime | None = None,
    title: str | None = None,
    url: str | None = None,
    is_novel: bool = True,
    confidence: float = 0.9,
    company: str | None = None,
    relevance: dict[str, int] | None = None,
) -> int:
    n = next(_serial)
    seen = first_seen_at or published_at + timedelta(minutes=2)
    article = Article(
        feed_id=feed_id,
        item_key=f"item-{n}",
        url=url or f"https://news.example.com/{n}",
        title=title or f"Headline {n} ({label})",
        published_at=published_at,
        first_seen_at=seen,
        content_hash=f"{n:064d}",
        is_novel=is_novel,
    )
    session.add(article)
    session.flush()
    for ticker in tickers:
        session.add(
            ArticleEntity(
                article_id=article.id,
                ticker=ticker,
                company=company,
                matched_by="cashtag",
                relevance=(relevance or {}).get(ticker),
                published_at=published_at,
            )
        )
    rest = (1 - confidence) / 2
    probs = {k: (confidence if k == label else rest) for k in ("negative", "neutral", "positive")}
    session.add(
        SentimentScore(
            article_id=article.id,
            model_version=MODEL,
            label=label,
            p_negative=probs["negative"],
            p_neutral=probs["neutral"],
            p_positive=probs["positive"],
            score=probs["positive"] - probs["negative"],
            scored_at=seen,
        )
    )
    return article.id


def add_history(
    session: Session,
    feed_id: int,
    *,
    ticker: str | None,
    end: datetime,
    hours: int,
    per_hour: int,
    negative_share: float,
    company: str | None = None,
) -> None:
    """``hours`` of steady news before ``end`` (exclusive of the last hour): exact shares per hour."""
    negatives = round(per_hour * negative_share)
    for h in range(1, hours + 1):
        start = end - timedelta(hours=h + 1)
        for i in range(per_hour):
            add_article(
                session,
                feed_id,
                published_at=start + timedelta(minutes=5 + i * (50 // max(per_hour, 1))),
                label="negative" if i < negatives else "neutral",
                tickers=[ticker] if ticker else [],
                company=company,
            )


def add_burst(
    session: Session,
    feed_id: int,
    *,
    ticker: str | None,
    end: datetime,
    count: int,
    negatives: int,
    minutes: int = 50,
    company: str | None = None,
    title: str = "Bad news",
    also: Iterable[str] = (),
    relevance: dict[str, int] | None = None,
) -> list[int]:
    """``count`` articles in the ``minutes`` before ``end``, the first ``negatives`` negative."""
    ids = []
    for i in range(count):
        published = end - timedelta(minutes=minutes) + timedelta(minutes=i * minutes / max(count, 1))
        ids.append(
            add_article(
                session,
                feed_id,
                published_at=published,
                first_seen_at=min(published + timedelta(minutes=1), end),
                label="negative" if i < negatives else "neutral",
                tickers=([ticker] if ticker else []) + list(also),
                title=f"{title} {i}",
                company=company,
                relevance=relevance,
            )
        )
    return ids


# --- SMTP ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1 that records what it receives; can be stopped and restarted."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    #: With a TLS context the server requires STARTTLS and a login as ``login``.
    tls_context: ssl.SSLContext | None = None
    login: tuple[str, str] | None = None
    _controller: object | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        server = self

        class Handler:
            async def handle_DATA(self, _server, session, envelope):
                with server._lock:
                    server.received.append(
                        Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                    )
                return "250 OK"

        extra = {}
        if self.tls_context is not None:
            extra = {"tls_context": self.tls_context, "require_starttls": True}
        if self.login is not None:
            extra.update(auth_required=True, authenticator=self._authenticate, auth_require_tls=True)
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **extra)
        self._controller.start()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            )
            == self.login
        )
        return AuthResult(success=ok, handled=False)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def message_ids(self) -> list[str]:
        return [r.message["Message-ID"] for r in self.received]


@contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1, via the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
