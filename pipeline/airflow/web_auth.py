"""Airflow's login for FinSent's writes when the web app is mounted in Airflow's API server.

Airflow does not authenticate plugin apps: without this, anyone who reaches the API server
could post corrections and silences. Each write must carry a JWT Airflow issued (the
``Authorization: Bearer`` header an API client sends, or the ``_token`` cookie Airflow's UI
sets after login), checked by Airflow's own auth manager (signature, expiry, audience,
revocation), so FinSent holds no copy of Airflow's keys or rules.
"""

from __future__ import annotations

import logging

from fastapi import Request

from pipeline.web.security import set_verified_user

log = logging.getLogger(__name__)

# The cookie Airflow's UI keeps its JWT in (airflow.api_fastapi.auth.managers.base_auth_manager).
AIRFLOW_TOKEN_COOKIE = "_token"


def _candidates(request: Request) -> list[str]:
    found = []
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    if request.cookies.get(AIRFLOW_TOKEN_COOKIE):
        found.append(request.cookies[AIRFLOW_TOKEN_COOKIE])
    return found


async def require_airflow_user(request: Request) -> str | None:
    """None when the request carries a valid Airflow JWT, else why the write is refused.

    The bearer header may hold FinSent's own UI token instead (a script writing through
    Airflow then sends Airflow's JWT in the cookie), so every candidate is tried. The JWT's
    user is the verified author of the write (a correction is recorded under that name,
    whatever the form says).
    """
    candidates = _candidates(request)
    if not candidates:
        return "Log in to Airflow first: writes through Airflow need its login (no Airflow token sent)."
    from airflow.api_fastapi.app import get_auth_manager
    from jwt import InvalidTokenError

    for candidate in candidates:
        try:
            user = await get_auth_manager().get_user_from_token(candidate)
        except InvalidTokenError:
            continue
        except Exception as exc:  # e.g. no auth manager (not in the API server): fail closed
            log.error("cannot check Airflow's token: %s", exc)
            return "Airflow's login cannot be checked here: writes are refused."
        log.info("write by Airflow user %s", user.get_name())
        set_verified_user(request, user.get_name())
        return None
    return "Airflow's token is invalid or expired: log in to Airflow again."


__all__ = ["AIRFLOW_TOKEN_COOKIE", "require_airflow_user"]
