"""Passwords out of everything FinSent prints or logs: one function, every form.

A database location can carry its password in three places, and each is masked as ``***``:

- the userinfo of a URL, ``scheme://user:PASSWORD@host``, the password taken up to the LAST
  ``@`` before the host, so a password holding an unescaped ``@`` is masked whole;
- a parameter of a URL's query or of a libpq key-value string (``host=db password='a b'
  dbname=x``), quoted or not, whose name ends in ``password``, ``passwd``, ``pwd``,
  ``secret``, ``token``, ``apikey`` / ``api_key``, ``access_key`` or ``sig`` / ``signature``
  (``password=``, libpq's ``sslpassword=``, ``PGPASSWORD=``, ``db_password=``,
  ``client_secret=``, a feed's ``?apikey=`` or ``?access_token=``, a signed URL's ``sig=``).

Stdlib only, so that settings, the database layer, the CLI and logging all use this one.
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "MaskingFilter", "mask_secrets", "mask_url"]

MASK = "***"

# scheme://  then the rest of the token (up to whitespace or a quote that closes it).
_URL = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<rest>[^\s'\"<>]+)")
# key=value: a quoted value (libpq DSN), else up to &, ;, whitespace, a quote or a bracket.
_PASSWORD_PARAM = re.compile(
    r"(?i)(?P<key>\b\w{0,32}?(?:password|passwd|pwd|secret|token|api_?key|access_?key|sig|signature))"
    r"(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;'\")]*)"
)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    # The query can hold an '@' (an email address parameter); the userinfo cannot be in it
    # unless the password itself holds a '?': then masking too much is the safe mistake.
    query = rest.find("?")
    scope = rest[:query] if query >= 0 and "@" in rest[:query] else rest
    at = scope.rfind("@")
    if at < 0:
        return scheme + rest
    userinfo, after = rest[:at], rest[at:]
    if ":" not in userinfo:
        return scheme + rest  # a user name alone is no secret
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{user}:{MASK}{after}"


def mask_secrets(text: str) -> str:
    """``text`` with every password in it (URL userinfo, ``password=`` parameters) as ***."""
    if not text:
        return text
    text = _URL.sub(_mask_userinfo, text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m.group('key')}{m.group('eq')}{MASK}", text)


def mask_url(url: str) -> str:
    """A database URL or libpq key-value string, its password masked. Anything that is
    neither may still hold a password in a form not recognised: it is shown as *** whole."""
    stripped = url.strip()
    if _URL.match(stripped) or re.match(r"^\s*\w+\s*=", stripped):
        return mask_secrets(url)
    return MASK


class MaskingFilter(logging.Filter):
    """Masks passwords in every record a handler emits (a driver's error, a library's debug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted again even when another handler cached it unmasked in exc_text.
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_secrets(formatted)
        return True
