"""Who may write through the web pages: the UI token, its login cookie and CSRF tokens.

Without a token (FINSENT_UI_TOKEN) the pages are read-only. With one, a write carries it,
either as ``Authorization: Bearer <token>`` (scripts) or as the login cookie a browser gets
from ``POST /login``. The cookie holds a random nonce and an HMAC of it keyed by the token,
never the token: reading a cookie store does not reveal it, and changing the token ends
every session. A form posted with the cookie must also carry a CSRF token, an HMAC of that
session and the form's purpose, which another site cannot compute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request

SESSION_COOKIE = "finsent_session"
CSRF_FIELD = "csrf"
# A session lasts a working week; after that the analyst logs in again.
SESSION_MAX_AGE_S = 7 * 86400

# An extra check a host may require of every write (the Airflow plugin checks Airflow's JWT):
# it answers None to allow, else the reason to refuse.
WriteGuard = Callable[[Request], Awaitable[str | None]]


@dataclass(frozen=True)
class Refusal:
    """A write refused: the HTTP status and a message for the page."""

    status: int
    message: str


def _key(token: str) -> bytes:
    # A key derived from the token, so that the HMACs below never use the token itself.
    return hashlib.sha256(b"finsent-ui-token\0" + token.encode()).digest()


def _mac(token: str, *parts: str) -> str:
    return hmac.new(_key(token), "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def new_session(token: str) -> str:
    """A login cookie's value: ``nonce.mac`` (the token is not in it)."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_mac(token, 'session', nonce)}"


def valid_session(token: str, value: str | None) -> bool:
    if not value or value.count(".") != 1:
        return False
    nonce, mac = value.split(".")
    return hmac.compare_digest(mac.encode(), _mac(token, "session", nonce).encode())


def token_matches(token: str, offered: str | None) -> bool:
    """Constant-time comparison of an offered token with the configured one."""
    if not offered:
        return False
    return hmac.compare_digest(offered.encode(), token.encode())


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def csrf_token(token: str, session: str, purpose: str) -> str:
    """The CSRF token of a form with ``purpose`` (e.g. "correct", "silence") in a session."""
    return _mac(token, "csrf", session, purpose)


@dataclass(frozen=True)
class Access:
    """What a request may do: ``mode`` is "off" (no token configured: read-only), "login"
    (token configured, not logged in) or "on"; ``session`` is the login cookie when it is
    what authenticated the request (its forms then need CSRF tokens)."""

    mode: str
    token: str | None = field(default=None, repr=False)  # never shown, even by a debug print
    session: str | None = None
    by_header: bool = False

    def csrf(self, purpose: str) -> str:
        if self.token is None or self.session is None:
            return ""
        return csrf_token(self.token, self.session, purpose)


def access(request: Request, token: str | None) -> Access:
    if not token:
        return Access("off")
    if token_matches(token, bearer(request)):
        return Access("on", token, by_header=True)
    session = request.cookies.get(SESSION_COOKIE)
    if valid_session(token, session):
        return Access("on", token, session=session)
    return Access("login", token)


ENABLE_HINT = (
    "The pages are read-only: set FINSENT_UI_TOKEN (e.g. to the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) where the app runs, "
    "restart it, and log in with that token to correct labels or set silences."
)


def check_write(request: Request, token: str | None, form: object, purpose: str) -> Refusal | None:
    """None when this write may go ahead, else why not.

    A bearer token needs no CSRF token: a browser never adds that header to another site's
    form. A session cookie does, as a browser sends it with any form posted here.
    """
    seen = access(request, token)
    if seen.mode == "off":
        return Refusal(403, ENABLE_HINT)
    if seen.mode == "login":
        return Refusal(403, "Log in with the FinSent UI token to make changes (wrong or missing token).")
    if seen.by_header:
        return None
    sent = str(getattr(form, "get", lambda *_: "")(CSRF_FIELD, "") or "")
    if not sent or not hmac.compare_digest(sent.encode(), seen.csrf(purpose).encode()):
        return Refusal(403, "The form's CSRF token is missing or stale: reload the page and try again.")
    return None


__all__ = [
    "CSRF_FIELD",
    "ENABLE_HINT",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_S",
    "Access",
    "Refusal",
    "WriteGuard",
    "access",
    "bearer",
    "check_write",
    "csrf_token",
    "new_session",
    "token_matches",
    "valid_session",
]
