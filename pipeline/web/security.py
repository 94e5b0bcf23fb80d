"""Who may write through the web pages: the UI token, its login cookie and CSRF tokens.

Without a token (FINSENT_UI_TOKEN) the pages are read-only. With one, a write carries it,
either as ``Authorization: Bearer <token>`` (scripts) or as the login cookie a browser gets
from ``POST /login``. The cookie holds a random nonce, the time it was issued and an HMAC of
both keyed by the token, never the token: reading a cookie store does not reveal it, the
server refuses it after :data:`SESSION_MAX_AGE_S` whatever the browser keeps, and changing
the token ends every session. The server also records each session
(:mod:`pipeline.web.sessions`, in the database every worker reads): logging out ends it
there, so a copy of the cookie made before is refused too. A form posted with the cookie must
also carry a CSRF token, an HMAC of that session and the form's purpose, which another site
cannot compute.

Guessing the token is slowed down: a client (by its address) that offers a wrong token, a
forged cookie or a wrong bearer header :data:`MAX_BAD_TOKENS` times within
:data:`BAD_TOKEN_WINDOW_S` is answered 429 on every write and login until the oldest of those
attempts is a window old (:class:`AttemptLimiter`; reads are never limited).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request

SESSION_COOKIE = "finsent_session"
CSRF_FIELD = "csrf"
# A session lasts a working week; after that the analyst logs in again.
SESSION_MAX_AGE_S = 7 * 86400

# An extra check a host may require of every write (the Airflow plugin checks Airflow's JWT):
# it answers None to allow, else the reason to refuse. A guard that verified who the user is
# says so with set_verified_user: that name, not the form's, then makes the write.
WriteGuard = Callable[[Request], Awaitable[str | None]]
_VERIFIED_USER = "finsent_verified_user"


def set_verified_user(request: Request, name: str) -> None:
    """Record, for this request only, the user a write guard verified."""
    setattr(request.state, _VERIFIED_USER, name)


def verified_user(request: Request) -> str | None:
    """The user a write guard verified for this request, or None."""
    return getattr(request.state, _VERIFIED_USER, None) or None


# Wrong tokens a client may offer per window before its writes and logins answer 429.
MAX_BAD_TOKENS = 10
BAD_TOKEN_WINDOW_S = 60.0


@dataclass(frozen=True)
class Refusal:
    """A write refused: the HTTP status and a message for the page. ``bad_token``: the
    request offered a wrong token (a bearer header, or a login cookie the token did not sign),
    which counts against the client's attempts."""

    status: int
    message: str
    bad_token: bool = False


class AttemptLimiter:
    """Wrong-token attempts per client over a sliding window, one per app.

    Thread-safe (sync routes run in a thread pool). Memory is bounded: beyond
    ``max_clients`` tracked clients, expired entries are dropped, then the oldest clients.
    """

    def __init__(
        self,
        limit: int = MAX_BAD_TOKENS,
        window_s: float = BAD_TOKEN_WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ):
        if limit < 1 or window_s <= 0:
            raise ValueError(f"attempt limit {limit} per {window_s} s: both must be positive")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again, or None when it may now."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                return None
            self._expire(failures, now)
            if not failures:
                del self._failures[client]
                return None
            if len(failures) < self.limit:
                return None
            return max(1, math.ceil(failures[0] + self.window_s - now))

    def failed(self, client: str) -> None:
        """Count a wrong token offered by ``client``."""
        now = self._clock()
        with self._lock:
            failures = self._failures.pop(client, None) or deque(maxlen=self.limit)
            self._expire(failures, now)
            failures.append(now)
            self._failures[client] = failures  # re-inserted: the dict's order is by last failure
            if len(self._failures) > self._max_clients:
                self._prune(now)

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()

    def _prune(self, now: float) -> None:
        for client in list(self._failures):
            self._expire(self._failures[client], now)
            if not self._failures[client]:
                del self._failures[client]
        while len(self._failures) > self._max_clients:
            del self._failures[next(iter(self._failures))]


def client_key(request: Request) -> str:
    """Whom attempts are counted for: the client's address (behind a proxy, the proxy's,
    unless the server is told to trust forwarded headers)."""
    return request.client.host if request.client is not None else "unknown"


def too_many(retry_after: int) -> Refusal:
    return Refusal(429, f"Too many wrong tokens from this address: try again in {retry_after} s.")


def _key(token: str) -> bytes:
    # A key derived from the token, so that the HMACs below never use the token itself.
    return hashlib.sha256(b"finsent-ui-token\0" + token.encode()).digest()


def _mac(token: str, *parts: str) -> str:
    return hmac.new(_key(token), "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def new_session(token: str, now: float | None = None) -> str:
    """A login cookie's value: ``nonce.issued.mac`` (the token is not in it). ``issued`` (Unix
    seconds) is under the MAC, so the server, not only the browser, ends it after
    :data:`SESSION_MAX_AGE_S`; a copied cookie is no good for longer."""
    nonce = secrets.token_urlsafe(18)
    issued = str(int(time.time() if now is None else now))
    return f"{nonce}.{issued}.{_mac(token, 'session', nonce, issued)}"


def signed_session(token: str, value: str | None) -> bool:
    """Whether ``value`` is a login cookie issued with ``token`` (its MAC holds), however old
    and whether or not it was logged out: a cookie that fails this is forged or guessed."""
    if not value or value.count(".") != 2:
        return False
    nonce, issued, mac = value.split(".")
    return hmac.compare_digest(mac.encode(), _mac(token, "session", nonce, issued).encode())


def valid_session(token: str, value: str | None, now: float | None = None) -> bool:
    if not signed_session(token, value):
        return False
    issued = value.split(".")[1]  # type: ignore[union-attr]  # signed: a string of three parts
    age = (time.time() if now is None else now) - int(issued)  # a digit string: the MAC held
    return 0 <= age < SESSION_MAX_AGE_S


def session_nonce(value: str) -> str:
    """The nonce of a login cookie (its first part): what the server's record is keyed by."""
    return value.split(".", 1)[0]


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


# Whether the server still holds a session (by its nonce): pipeline.web.sessions.
SessionCheck = Callable[[str], bool]


def access(request: Request, token: str | None, alive: SessionCheck) -> Access:
    """What the request may do. ``alive``: the server's record of sessions; a cookie that
    verifies but was logged out (or never recorded) is no login."""
    if not token:
        return Access("off")
    if token_matches(token, bearer(request)):
        return Access("on", token, by_header=True)
    session = request.cookies.get(SESSION_COOKIE)
    if valid_session(token, session) and alive(session_nonce(session)):
        return Access("on", token, session=session)
    return Access("login", token)


ENABLE_HINT = (
    "The pages are read-only: set FINSENT_UI_TOKEN (e.g. to the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) where the app runs, "
    "restart it, and log in with that token to correct labels or set silences."
)


def check_write(
    request: Request, token: str | None, form: object, purpose: str, alive: SessionCheck
) -> Refusal | None:
    """None when this write may go ahead, else why not.

    A bearer token needs no CSRF token: a browser never adds that header to another site's
    form. A session cookie does, as a browser sends it with any form posted here.
    """
    seen = access(request, token, alive)
    if seen.mode == "off":
        return Refusal(403, ENABLE_HINT)
    if seen.mode == "login":
        # A guess is a wrong bearer token or a cookie the token did not sign. A cookie it did
        # sign, logged out or expired, is an analyst's old login, not a guess: not counted.
        cookie = request.cookies.get(SESSION_COOKIE)
        guessed = bearer(request) is not None or (bool(cookie) and not signed_session(token, cookie))
        return Refusal(
            403, "Log in with the FinSent UI token to make changes (wrong or missing token).", guessed
        )
    if seen.by_header:
        return None
    sent = str(getattr(form, "get", lambda *_: "")(CSRF_FIELD, "") or "")
    if not sent or not hmac.compare_digest(sent.encode(), seen.csrf(purpose).encode()):
        return Refusal(403, "The form's CSRF token is missing or stale: reload the page and try again.")
    return None


__all__ = [
    "BAD_TOKEN_WINDOW_S",
    "CSRF_FIELD",
    "ENABLE_HINT",
    "MAX_BAD_TOKENS",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_S",
    "Access",
    "AttemptLimiter",
    "Refusal",
    "SessionCheck",
    "WriteGuard",
    "access",
    "bearer",
    "check_write",
    "client_key",
    "csrf_token",
    "new_session",
    "session_nonce",
    "set_verified_user",
    "signed_session",
    "token_matches",
    "too_many",
    "valid_session",
    "verified_user",
]
