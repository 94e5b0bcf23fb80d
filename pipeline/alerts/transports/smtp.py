"""``smtp``: send the alert email to an SMTP server (FinSent's settings, else an Airflow
``smtp`` connection).

``before_handover`` runs after the server's 354 reply to DATA, right before the message and
its end-of-data leave: everything before it (connect, TLS, login, envelope) can fail or crash
and be retried safely; a timeout or lost connection after it is :class:`OutcomeUnknown`.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline.alerts.transports.base import Capabilities, OutcomeUnknown, Outgoing
from pipeline.alerts.transports.registry import register
from pipeline.errors import AlertError

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)


#: The port each security mode listens on by convention (RFC 8314: 465 implicit TLS, 587
#: submission with STARTTLS; 25 plain relay), used when no port is set.
_DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


@dataclass(frozen=True)
class SmtpParams:
    host: str
    port: int
    security: str  # starttls | ssl | none
    user: str | None
    password: str | None
    from_addr: str
    timeout_s: float
    origin: str  # "settings" | "airflow connection smtp_default"


def smtp_params(settings: Settings, *, airflow_conn_id: str = "smtp_default") -> SmtpParams:
    """SMTP parameters from FinSent's settings, else from an Airflow ``smtp`` connection."""
    if settings.smtp_host:
        return SmtpParams(
            host=settings.smtp_host,
            port=settings.smtp_port or _DEFAULT_PORTS[settings.smtp_security],
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            from_addr=settings.smtp_from,
            timeout_s=settings.smtp_timeout_s,
            origin="settings",
        )
    params = airflow_smtp_params(airflow_conn_id, settings)
    if params is None:
        raise AlertError(
            "alert_transport is smtp but no SMTP server is configured: set FINSENT_SMTP_HOST "
            f"(or an Airflow connection '{airflow_conn_id}'), or use FINSENT_ALERT_TRANSPORT=outbox",
            transient=False,
        )
    return params


def smtp_from_connection(conn: Any) -> dict[str, Any]:
    """Settings (``smtp_*`` names) from an Airflow ``smtp`` connection: the one reader of it.

    Its extras follow the SMTP provider (``disable_ssl``, ``disable_tls``, ``from_email``,
    ``timeout``) so the connection form in the UI works; an explicit ``security`` extra
    ('starttls' | 'ssl' | 'none') wins.
    """
    extra = conn.extra_dejson or {}
    values: dict[str, Any] = {}
    if conn.host:
        values["smtp_host"] = conn.host
    if conn.port:
        values["smtp_port"] = conn.port
    if conn.login:
        values["smtp_user"] = conn.login
    if conn.password:
        values["smtp_password"] = conn.password
    if "security" in extra:
        values["smtp_security"] = extra["security"]
    elif not _truthy(extra.get("disable_ssl", False)):
        # The provider's default is implicit TLS (SMTP_SSL).
        values["smtp_security"] = "ssl"
    elif not _truthy(extra.get("disable_tls", False)):
        values["smtp_security"] = "starttls"
    else:
        values["smtp_security"] = "none"
    if extra.get("from_email"):
        values["smtp_from"] = extra["from_email"]
    if extra.get("timeout"):
        values["smtp_timeout_s"] = float(extra["timeout"])
    return values


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def airflow_smtp_params(conn_id: str, settings: Settings) -> SmtpParams | None:
    """Read an Airflow 3 ``smtp`` connection when running inside Airflow; None otherwise."""
    # Only inside an Airflow process: importing Airflow elsewhere is slow and writes config.
    if "airflow" not in sys.modules:
        return None
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        return None
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # not in a task, or no such connection
        log.debug("no Airflow connection %s: %s", conn_id, exc)
        return None
    values = smtp_from_connection(conn)
    if "smtp_host" not in values:
        return None
    security = values["smtp_security"]
    return SmtpParams(
        host=values["smtp_host"],
        port=int(values.get("smtp_port") or _DEFAULT_PORTS.get(security, 587)),
        security=security,
        user=values.get("smtp_user"),
        password=values.get("smtp_password"),
        from_addr=values.get("smtp_from", settings.smtp_from),
        timeout_s=values.get("smtp_timeout_s", settings.smtp_timeout_s),
        origin=f"airflow connection {conn_id}",
    )


@register
@dataclass
class SmtpTransport:
    params: SmtpParams
    #: TLS trust for STARTTLS / SSL; default: the system's CA store with hostname checks.
    ssl_context: ssl.SSLContext | None = None

    name: ClassVar[str] = "smtp"
    capabilities: ClassVar[Capabilities] = Capabilities(email=True, requires_recipients=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        return cls(smtp_params(settings))

    def location(self) -> str | None:
        return None

    def already_delivered(self, out: Outgoing) -> bool:
        return False  # SMTP cannot be asked; delivery's state machine decides

    def _connect(self) -> smtplib.SMTP:
        p = self.params
        context = self.ssl_context or ssl.create_default_context()
        if p.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(p.host, p.port, timeout=p.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(p.host, p.port, timeout=p.timeout_s)
        try:
            smtp.ehlo()
            if p.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if p.user:
                smtp.login(p.user, p.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, out: Outgoing, *, before_handover: Callable[[], None]) -> str:
        p = self.params
        msg, recipients = out.email(p.from_addr), out.recipients
        where = f"smtp://{p.host}:{p.port}"
        handed_over = accepted = False
        refused: dict[str, tuple[int, bytes]] = {}
        try:
            with self._connect() as smtp:
                code, reply = smtp.mail(p.from_addr)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, p.from_addr)
                for rcpt in recipients:
                    code, reply = smtp.rcpt(rcpt)
                    if code not in (250, 251):
                        refused[rcpt] = (code, reply)
                if len(refused) == len(recipients):
                    smtp.rset()
                    raise smtplib.SMTPRecipientsRefused(refused)
                # DATA by hand (smtplib.data() in three steps) to know the moment the body,
                # end-of-data included, has left: before it a failure is safe to retry, after
                # it the server may have stored the message without answering in time.
                code, reply = smtp.docmd("DATA")
                if code != 354:
                    raise smtplib.SMTPDataError(code, reply)
                before_handover()
                smtp.send(_dot_stuffed(msg.as_bytes(policy=policy.SMTP)))
                handed_over = True
                code, reply = smtp.getreply()
                if code != 250:
                    raise smtplib.SMTPDataError(code, reply)
                accepted = True
        except (smtplib.SMTPException, OSError) as exc:
            if accepted:  # only the QUIT after a 250 failed: the message is the server's
                log.warning("SMTP %s: %s after the message was accepted", where, _describe(exc))
            elif handed_over and not isinstance(exc, smtplib.SMTPResponseException):
                raise OutcomeUnknown(
                    f"SMTP {where}: no answer after the message was handed over ({_describe(exc)}); "
                    "it may have arrived"
                ) from None
            else:
                raise AlertError(
                    f"SMTP {where} failed: {_describe(exc)}", transient=_transient(exc)
                ) from None
        if refused:
            log.warning("SMTP %s refused %s", where, ", ".join(sorted(refused)))
        return where


def _dot_stuffed(body: bytes) -> bytes:
    """The DATA payload as smtplib.data() sends it: leading dots doubled, then CRLF.CRLF."""
    stuffed = re.sub(rb"(?m)^\.", b"..", body)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _transient(exc: BaseException) -> bool:
    """A 5xx reply (other than a failed login, which a configuration fix cures) fails for good."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return not all(500 <= code < 600 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return not 500 <= exc.smtp_code < 600
    return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "all recipients refused (" + ", ".join(sorted(exc.recipients)) + ")"
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{exc.smtp_code} {msg}".strip()
    return f"{type(exc).__name__}: {exc}".strip()
