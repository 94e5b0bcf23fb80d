"""Which Host headers a server bound to the loopback answers (DNS rebinding).

A page another site serves can make the browser resolve that site's name to 127.0.0.1 and
read what a local `finsent serve` answers there: the pages need no token to read, and they
show headlines, alerts and the names analysts corrected under. The browser still sends the
other site's name as Host, so a loopback server answers only its own names: localhost, the
loopback addresses, and the host of FINSENT_WEB_URL (the address a proxy in front serves it
under, which passes Host through as web.md asks). A server bound to another address is meant
to be reached under names this cannot know, and answers every Host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_NAMES", "HostCheck", "is_loopback", "loopback_hosts"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(bind: str, web_url: str | None) -> frozenset[str] | None:
    """The Host names a server bound to ``bind`` answers; None: every one (not a loopback bind)."""
    if not is_loopback(bind):
        return None
    names = {*LOOPBACK_NAMES, bind.strip("[]").lower()}
    public = urlsplit(web_url).hostname if web_url else None
    if public:
        names.add(public.lower())
    return frozenset(names)


def _hostname(header: str) -> str | None:
    try:
        name = urlsplit("//" + header).hostname  # strips the port, and an IPv6 literal's brackets
    except ValueError:
        return None
    return name.lower() if name else None


class HostCheck:
    """ASGI middleware: 400 for an HTTP request whose Host is not one of ``allowed``."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]):
        self.app = app
        self.allowed = frozenset(a.lower() for a in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if _hostname(raw) not in self.allowed:
                body = b"Host not served here: open the pages at http://127.0.0.1 or localhost\n"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
