"""The FinSent web app: market overview, company, alert and feeds pages, rendered on the server.

One FastAPI app serves both ways of running it: ``finsent serve`` (uvicorn, on its own) and
the Airflow plugin (mounted under Airflow's API server at a prefix). Every link and form
action is relative to the page, so the same HTML works at ``/`` and at ``/finsent/``.
Charts are SVG drawn here (:mod:`pipeline.web.charts`) and the one stylesheet ships in the
package: nothing is fetched from the internet.

The pages only read, through the trends and alerts query modules, except two forms: the
silence form on the alert page, which writes the row ``finsent alerts silence`` writes
(through :mod:`pipeline.alerts.silences`, as the command does), and
the correction form on each headline (company and alert pages), which stores an analyst's
label through :mod:`pipeline.feedback`. Writes need the UI token (:mod:`pipeline.web.security`):
without FINSENT_UI_TOKEN the app is read-only; with it, a write carries the token (login cookie
plus a CSRF token, or a bearer header), and a host may require more of each write (the
Airflow plugin checks Airflow's JWT).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.db.engine import Database
from pipeline.errors import FinSentError
from pipeline.feedback import Recorded
from pipeline.feedback.corrections import MAX_WHO, clean_who
from pipeline.masking import mask_secrets
from pipeline.web import pages, security
from pipeline.web.sessions import SessionRecords

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Lazy:
    """Opens the database (or reads another value) on first use (the Airflow plugin is
    imported long before a page is asked for, and must not connect at import), then keeps
    it for the app's life."""

    def __init__(self, opener: Callable[[], Any]):
        self._opener = opener
        self._done = False
        self._db: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if not self._done:
            with self._lock:
                if not self._done:
                    self._db = self._opener()
                    self._done = True
        return self._db


def relative_root(request: Request) -> str:
    """The relative path from this page back to the app's root ("./", "../", ...)."""
    path = request.url.path
    root_path = request.scope.get("root_path") or ""
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    depth = path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    env.filters["ts"] = lambda v: "-" if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    env.filters["pct"] = lambda v, digits=0: "-" if v is None else f"{100 * float(v):.{digits}f}%"
    env.filters["num"] = lambda v, digits=2: "-" if v is None else f"{float(v):.{digits}f}"
    env.filters["ticker_path"] = lambda t: quote(str(t), safe="")
    # A feed URL may carry credentials (https://user:password@host/feed): never shown.
    env.filters["masked"] = lambda v: "" if v is None else mask_secrets(str(v))
    return Jinja2Templates(env=env)


# On every response. Framing is allowed from the same origin only: Airflow's UI shows the
# pages in a frame of its own (external_views), another site may not.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
}


def create_app(
    database: Database | Callable[[], Database],
    *,
    clock: Clock = _utcnow,
    token: str | Callable[[], str | None] | None = None,
    write_guard: security.WriteGuard | None = None,
    limiter: security.AttemptLimiter | None = None,
    user_header: str | Callable[[], str | None] | None = None,
    universe: Callable[[], Any] | None = None,
) -> FastAPI:
    """The app over ``database`` (an open one, or a function that opens it on first use).

    ``clock`` gives "now" (tests and replays pin it); every page reads it once. ``token`` is
    the UI token that unlocks writes (None: read-only), or a function giving it (read on
    the first request that needs it, so a host can load its settings late). ``write_guard``
    is a further check every write must pass (the Airflow plugin's: a valid Airflow JWT).
    ``limiter`` counts wrong tokens per client (default: this app's own, with
    :data:`security.MAX_BAD_TOKENS` per :data:`security.BAD_TOKEN_WINDOW_S`).
    ``user_header`` is the one header an authenticating proxy sets to the user
    (``web_trusted_user_header``; or a function giving it, read once like ``token``): a
    correction is made under its name. None: no header is trusted (any client could send
    one), and the name typed in the form is used. ``universe`` gives the company universe
    (a Watchlist; read once, on the first page that needs it), so a company no article has
    mentioned yet is told apart from a typo.
    """
    lazy = _Lazy(database if callable(database) else (lambda: database))

    # A host's token function is read once, on the first request that needs it (the plugin
    # reads Airflow's settings, which must not happen at import), then kept for the app's life.
    lazy_token = _Lazy(token if callable(token) else (lambda: token))  # type: ignore[arg-type]

    def ui_token() -> str | None:
        return lazy_token.get() or None

    lazy_header = _Lazy(user_header if callable(user_header) else (lambda: user_header))
    lazy_universe = _Lazy(universe or (lambda: None))

    def not_yet_mentioned(ticker: str) -> str | None:
        """The 404 message for a company of the universe that no article has named yet."""
        try:
            companies = lazy_universe.get()
        except FinSentError:  # a hint only; `finsent companies` reports the universe's errors
            return None
        found = companies.company(ticker) if companies is not None else None
        if found is None:
            return None
        return (
            f"{found.name} ({found.ticker}) is in the company universe, but no article has mentioned it yet."
        )

    def trusted_user(request: Request) -> str | None:
        """The user the trusted proxy header names (None: no header configured, or none sent)."""
        header = lazy_header.get()
        if not header:
            return None
        user = request.headers.get(header, "").strip() or None
        if user is None and request.method == "POST":
            # The proxy sets it on every request: a write without it did not come through it.
            log.warning(
                "a write to %s from %s arrived without the trusted user header %s (not through the "
                "proxy?): if accepted, it is recorded under the name typed in its form",
                request.url.path,
                security.client_key(request),
                header,
            )
        return user

    def verified_writer(request: Request) -> str | None:
        # The host's login (e.g. Airflow's) first, then the proxy's header when one is trusted.
        return security.verified_user(request) or trusted_user(request)

    def who_writes(request: Request, form: Any) -> str:
        # A verified user, else the form's field: self-declared.
        return verified_writer(request) or str(form.get("who", ""))

    def remembered_who(request: Request) -> str:
        return trusted_user(request) or unquote(request.cookies.get(WHO_COOKIE, ""))[:MAX_WHO]

    attempts = limiter if limiter is not None else security.AttemptLimiter()
    sessions = SessionRecords(lazy.get, clock, security.SESSION_MAX_AGE_S)
    templates = _templates()
    app = FastAPI(title="FinSent", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.headers.get("content-type", "").startswith("text/html"):
            # Pages hold CSRF tokens and what an analyst may not want left on a shared proxy.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        context = {
            "root": relative_root(request),
            "here": _here(request),
            **context,
        }
        if "writes" not in context:
            context["writes"] = security.access(request, ui_token(), sessions.alive)
        return templates.TemplateResponse(request, name, context, status_code=status)

    def not_found(request: Request, message: str, suggestions: list[str] | None = None) -> HTMLResponse:
        return render(
            request, "not_found.html", {"message": message, "suggestions": suggestions or []}, status=404
        )

    def refused(request: Request, status: int, message: str) -> HTMLResponse:
        # No forms on a refusal page: it need not read the token (a host's write guard
        # refuses before the token is ever loaded).
        context = {"message": message, "writes": security.Access("refused")}
        return render(request, "error.html", context, status=status)

    def throttled(request: Request) -> HTMLResponse | None:
        """The 429 page when this client offered too many wrong tokens of late, else None."""
        wait = attempts.retry_after(security.client_key(request))
        if wait is None:
            return None
        log.warning("write to %s refused: too many wrong tokens from %s", request.url.path, request.client)
        refusal = security.too_many(wait)
        response = refused(request, refusal.status, refusal.message)
        response.headers["Retry-After"] = str(wait)
        return response

    async def guard(request: Request, purpose: str) -> tuple[Any, Response | None]:
        """The posted form, or the page refusing the write (cross-site, the host's check,
        no or wrong token, missing or stale CSRF token)."""
        if not _same_origin(request):
            return None, refused(request, 403, "cross-site form refused")
        if (slow_down := throttled(request)) is not None:
            return None, slow_down
        if write_guard is not None:
            why = await write_guard(request)
            if why is not None:
                return None, refused(request, 401, why)
        form = await request.form(max_files=0, max_fields=8, max_part_size=4096)
        refusal = security.check_write(request, ui_token(), form, purpose, sessions.alive)
        if refusal is not None:
            log.warning("write to %s refused: %s", request.url.path, refusal.message)
            if refusal.bad_token:
                attempts.failed(security.client_key(request))
            return None, refused(request, refusal.status, refusal.message)
        return form, None

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return refused(request, 403, "cross-site form refused")
        if (slow_down := throttled(request)) is not None:
            return slow_down
        if write_guard is not None and (why := await write_guard(request)) is not None:
            return refused(request, 401, why)
        token_now = ui_token()
        if token_now is None:
            return refused(request, 403, security.ENABLE_HINT)
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        if not security.token_matches(token_now, str(form.get("token", ""))):
            log.warning("login refused: wrong token")
            attempts.failed(security.client_key(request))
            return refused(request, 403, "Wrong token: writes stay locked.")
        cookie = security.new_session(token_now)
        sessions.start(security.session_nonce(cookie))
        response = RedirectResponse(_safe_back(str(form.get("back", ""))), status_code=303)
        response.set_cookie(
            security.SESSION_COOKIE,
            cookie,
            max_age=security.SESSION_MAX_AGE_S,
            path=_cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response

    @app.post("/logout", response_class=HTMLResponse)
    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return refused(request, 403, "cross-site form refused")
        form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
        cookie = request.cookies.get(security.SESSION_COOKIE)
        token_now = ui_token()
        if token_now is not None and security.valid_session(token_now, cookie):
            sessions.end(security.session_nonce(cookie))  # every copy of the cookie, every worker
        response = RedirectResponse(_safe_back(str(form.get("back", ""))), status_code=303)
        response.delete_cookie(security.SESSION_COOKIE, path=_cookie_path(request))
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return not_found(request, "There is no such page.")
        return render(request, "error.html", {"message": str(exc.detail)}, status=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        # Parameters are parsed by the pages themselves; anything FastAPI still rejects is a
        # URL that names nothing here.
        return not_found(request, "There is no such page.")

    @app.exception_handler(FinSentError)
    async def finsent_error(request: Request, exc: FinSentError) -> Response:
        log.error("page %s failed: %s", request.url.path, exc)
        return render(request, "error.html", {"message": str(exc)}, status=503)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, page: str = "1", days: str = "3") -> Response:
        ctx = pages.overview(lazy.get(), now=clock(), page=_int(page, 1), days=_int(days, 3, high=30))
        return render(request, "overview.html", ctx)

    @app.get("/company", response_class=HTMLResponse)
    def find_company(request: Request, ticker: str = "") -> Response:
        # The search box: a GET form lands here; send the browser to the company's page.
        wanted = ticker.strip()
        if not wanted:  # an empty search: back to the overview
            return RedirectResponse("./", status_code=303)
        try:
            known = pages.ticker_known(lazy.get(), pages.normalise_ticker(wanted))
        except ValueError:  # not a ticker's shape ("Voltara Motors"): a name, perhaps
            known = False
        if not known:
            named = pages.tickers_named(lazy.get(), wanted)
            if len(named) == 1:
                wanted = named[0]
            elif named:
                more = " (and more: type more of the name)" if len(named) > pages.NAME_MATCHES else ""
                return not_found(
                    request,
                    f"Several companies' names contain '{pages.shown(wanted)}'{more}.",
                    named[: pages.NAME_MATCHES],
                )
        return RedirectResponse(f"company/{quote(wanted, safe='')}", status_code=303)

    @app.get("/company/{ticker}", response_class=HTMLResponse)
    def company(
        request: Request, ticker: str, by: str = "hour", page: str = "1", corrected: str = ""
    ) -> Response:
        result = pages.company(
            lazy.get(), ticker, now=clock(), by="day" if by == "day" else "hour", page=_int(page, 1)
        )
        if isinstance(result, pages.Unknown):
            try:
                known_company = not_yet_mentioned(pages.normalise_ticker(ticker))
            except ValueError:
                known_company = None
            return not_found(request, known_company or result.message, result.suggestions)
        shown = pages.confirmed(lazy.get(), correction=_int(corrected, 0), ticker=result["ticker"])
        mine = own_on_page(request, [h.id for h in result["headlines"].rows], result["ticker"])
        result.update(corrected=shown, who=remembered_who(request), mine=mine)
        return render(request, "company.html", result)

    async def correct(
        request: Request,
        store: Callable[[Database, int, str, str], Recorded | None],
        missing: Callable[[Any], str],
        back: Callable[[Recorded, Any], str],
    ) -> Response:
        """A correction posted from a headline's form, on the company and alert pages alike:
        ``store(db, article_id, label, who)`` keeps it (None: nothing to correct, answered
        404 with ``missing(form)``); the browser then goes to ``back(done, form)``, at the
        headline."""
        form, refusal = await guard(request, "correct")
        if refusal is not None:
            return refusal
        if not str(form.get("article_id", "")).strip():
            message = "The correction names no article: post its number as article_id (e.g. article_id=123)."
            return render(request, "error.html", {"message": message}, status=400)
        article_id = _int(str(form.get("article_id", "")), 0, high=2**62)
        try:
            # Cleaned here too, so the cookie remembers the name as it is stored.
            who = clean_who(who_writes(request, form))
            done = store(lazy.get(), article_id, str(form.get("label", "")), who)
        except ValueError as exc:
            return render(request, "error.html", {"message": str(exc)}, status=400)
        if done is None:
            return not_found(request, missing(form))
        target = f"{back(done, form)}#article-{article_id}"
        return _remember_who(request, RedirectResponse(target, status_code=303), who)

    def identified() -> bool:
        """Whether writes carry a user the app did not take from the form: the host's login
        (Airflow's, checked by its write guard) or the trusted proxy header. Only then can a
        page tell whose a correction is, so only then does it offer to withdraw one."""
        return write_guard is not None or bool(lazy_header.get())

    def own_on_page(request: Request, article_ids: Collection[int], ticker: str | None) -> dict[int, Any]:
        if not identified():
            return {}
        return pages.own(lazy.get(), article_ids, ticker=ticker, who=remembered_who(request))

    async def withdraw(
        request: Request,
        scope: Callable[[], tuple[str | None, Collection[int] | None] | None],
        missing: str,
        back: Callable[[int, Any], str],
    ) -> Response:
        """Withdraw the poster's own correction shown on a page: ``scope()`` gives the page's
        company (None: whole articles) and the headlines it lists (None: any of the company's),
        or None when there is no such page (404 with ``missing``). The browser goes back to
        ``back(article_id, form)``, at the headline. Someone else's is refused, and so is any
        where the user is only the name typed in the form: `finsent feedback remove` withdraws
        any."""
        form, refusal = await guard(request, "withdraw")
        if refusal is not None:
            return refusal
        user = verified_writer(request)
        if user is None:
            message = (
                "withdrawing a correction here needs a user the app can verify (Airflow's login, or "
                "a proxy header named in FINSENT_WEB_TRUSTED_USER_HEADER): a typed name could be "
                "anyone's; `finsent feedback remove ID` withdraws any correction"
            )
            return refused(request, 403, message)
        page = scope()
        if page is None:
            return not_found(request, missing)
        correction_id = _int(str(form.get("correction_id", "")), 0, high=2**62)
        try:
            done = pages.withdraw(
                lazy.get(), correction_id, who=clean_who(user), ticker=page[0], articles=page[1]
            )
        except ValueError as exc:
            return render(request, "error.html", {"message": str(exc)}, status=403)
        if done is None:
            shown = pages.shown(str(form.get("correction_id", "")))
            return not_found(request, f"There is no correction #{shown} on this page.")
        return RedirectResponse(f"{back(done.article_id, form)}#article-{done.article_id}", status_code=303)

    @app.post("/company/{ticker}/withdraw", response_class=HTMLResponse)
    async def withdraw_company(request: Request, ticker: str) -> Response:
        try:
            known = pages.normalise_ticker(ticker)
        except ValueError as exc:
            return render(request, "error.html", {"message": str(exc)}, status=400)

        def back(article_id: int, form: Any) -> str:
            return f"../{quote(known, safe='')}?{_company_page_query(form)}"

        return await withdraw(request, lambda: (known, None), "", back)

    @app.post("/alert/{alert_id}/withdraw", response_class=HTMLResponse)
    async def withdraw_alert(request: Request, alert_id: str) -> Response:
        number = _int(alert_id, 0)

        def scope() -> tuple[str | None, Collection[int] | None] | None:
            return pages.alert_articles(lazy.get(), number) if number > 0 else None

        missing = f"There is no alert #{pages.shown(alert_id)}."
        return await withdraw(request, scope, missing, lambda article_id, form: f"../{number}")

    @app.post("/company/{ticker}/correct", response_class=HTMLResponse)
    async def correct_company(request: Request, ticker: str) -> Response:
        def store(db: Database, article_id: int, label: str, who: str) -> Recorded | None:
            return pages.correct(db, article_id, ticker=ticker, label=label, who=who, now=clock())

        def back(done: Recorded, form: Any) -> str:
            company = quote(done.ticker or "", safe="")
            return f"../{company}?corrected={done.correction_id}&{_company_page_query(form)}"

        def missing(form: Any) -> str:
            return f"There is no article #{pages.shown(str(form.get('article_id', '')))}."

        return await correct(request, store, missing, back)

    @app.get("/alert/{alert_id}", response_class=HTMLResponse)
    def alert(request: Request, alert_id: str, silenced: str = "", corrected: str = "") -> Response:
        number = _int(alert_id, 0)
        ctx = pages.alert(lazy.get(), number, now=clock()) if number > 0 else None
        if ctx is None:
            return not_found(request, f"There is no alert #{pages.shown(alert_id)}.")
        ctx["silenced"] = pages.confirmed(lazy.get(), silence=_int(silenced, 0), alert=number)
        shown = pages.confirmed(
            lazy.get(),
            correction=_int(corrected, 0),
            ticker=ctx["correction_ticker"],
            articles=ctx["article_ids"],
        )
        mine = own_on_page(request, ctx["article_ids"], ctx["correction_ticker"])
        ctx.update(corrected=shown, who=remembered_who(request), mine=mine)
        return render(request, "alert.html", ctx)

    @app.post("/alert/{alert_id}/correct", response_class=HTMLResponse)
    async def correct_alert(request: Request, alert_id: str) -> Response:
        number = _int(alert_id, 0)

        def store(db: Database, article_id: int, label: str, who: str) -> Recorded | None:
            return pages.correct_from_alert(db, number, article_id, label=label, who=who, now=clock())

        def back(done: Recorded, form: Any) -> str:
            return f"../{number}?corrected={done.correction_id}"

        def missing(form: Any) -> str:
            return f"There is no alert #{pages.shown(alert_id)} or no such article on it."

        return await correct(request, store, missing, back)

    @app.post("/alert/{alert_id}/silence", response_class=HTMLResponse)
    async def silence(request: Request, alert_id: str) -> Response:
        form, refusal = await guard(request, "silence")
        if refusal is not None:
            return refusal
        number = _int(alert_id, 0)
        duration, reason = str(form.get("duration", "")), str(form.get("reason", ""))
        try:
            result = pages.silence(lazy.get(), number, duration=duration, reason=reason, now=clock())
        except ValueError as exc:
            return render(request, "error.html", {"message": str(exc)}, status=400)
        if result is None:
            return not_found(request, f"There is no alert #{pages.shown(alert_id)}.")
        return RedirectResponse(f"../{number}?silenced={result.silence_id}", status_code=303)

    @app.get("/companies", response_class=HTMLResponse)
    def companies(request: Request, page: str = "1", days: str = "7") -> Response:
        ctx = pages.companies(lazy.get(), now=clock(), days=_int(days, 7, high=90), page=_int(page, 1))
        return render(request, "companies.html", ctx)

    @app.get("/feeds", response_class=HTMLResponse)
    def feeds(request: Request, page: str = "1") -> Response:
        return render(request, "feeds.html", pages.feeds(lazy.get(), now=clock(), page=_int(page, 1)))

    return app


def _int(value: str, default: int, *, low: int = 1, high: int = 1_000_000) -> int:
    """A page number or count from the query string; nonsense falls back to the default."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if low <= number <= high else default


# The name typed in a correction form, remembered in a cookie for the next form.
WHO_COOKIE = "finsent_who"


def _company_page_query(form: Any) -> str:
    """The company page a form was posted from: its page of headlines and its granularity."""
    by = "&by=day" if form.get("by") == "day" else ""
    return f"page={_int(str(form.get('page', '')), 1)}{by}"


def _remember_who(request: Request, response: Response, who: str) -> Response:
    if who:
        # Percent-encoded: a name may hold characters a cookie cannot; read back by
        # remembered_who and shown escaped by the templates. Scoped and flagged as the
        # session cookie is: this app's prefix only, and over https only where it is served so.
        response.set_cookie(
            WHO_COOKIE,
            quote(who, safe=""),
            max_age=365 * 86400,
            path=_cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    return response


def _here(request: Request) -> str:
    """This page relative to the app's root (where a login form sends the browser back)."""
    path = request.url.path
    root_path = request.scope.get("root_path") or ""
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    query = request.url.query
    return path.lstrip("/") + (f"?{query}" if query else "")


def _secure(request: Request) -> bool:
    # Cookies set over https are sent back over https only.
    return request.url.scheme == "https"


def _cookie_path(request: Request) -> str:
    # Under Airflow the app lives at a prefix: its cookie is for that prefix only.
    return (request.scope.get("root_path") or "").rstrip("/") + "/"


def _safe_back(back: str) -> str:
    """Where a login sends the browser back to: a page of this app, relative to its root
    (the login form names it); anything else (another site, an absolute path) goes home."""
    if (
        not back
        or back.startswith(("/", "\\"))
        or "//" in back
        or ".." in back
        or ":" in back.split("?")[0]
        or any(c in back for c in "\\\r\n")
    ):
        return "./"
    return back


def _same_origin(request: Request) -> bool:
    """A browser names the page that sent a form (Origin, else Referer): refuse forms that
    another site's page posts here. Clients that send neither (curl, tests) pass."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or sent == "null":
        return sent is None
    return urlsplit(sent).netloc == request.headers.get("host", "")


__all__ = ["create_app", "relative_root"]
