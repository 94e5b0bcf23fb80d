"""Transport parameters: FinSent settings first, else an Airflow ``smtp`` connection."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from pipeline.alerts.transports import make_transports
from pipeline.alerts.transports.outbox import OutboxTransport
from pipeline.alerts.transports.smtp import SmtpTransport, smtp_params
from pipeline.errors import AlertError


def _fake_airflow(monkeypatch: pytest.MonkeyPatch, conn: SimpleNamespace | None) -> None:
    class BaseHook:
        @staticmethod
        def get_connection(conn_id: str):
            if conn is None:
                raise RuntimeError(f"The conn_id `{conn_id}` isn't defined")
            return conn

    sdk = types.ModuleType("airflow.sdk")
    sdk.BaseHook = BaseHook
    monkeypatch.setitem(sys.modules, "airflow", types.ModuleType("airflow"))
    monkeypatch.setitem(sys.modules, "airflow.sdk", sdk)


def test_settings_win(settings):
    s = settings.model_copy(
        update={"smtp_host": "mail.example.com", "smtp_port": 2525, "smtp_security": "ssl"}
    )
    p = smtp_params(s)
    assert (p.host, p.port, p.security, p.origin) == ("mail.example.com", 2525, "ssl", "settings")


@pytest.mark.parametrize(("security", "port"), [("ssl", 465), ("starttls", 587), ("none", 25)])
def test_an_unset_port_follows_the_security_mode(settings, monkeypatch, security, port):
    # FINSENT_SMTP_SECURITY=ssl alone used to connect with implicit TLS to port 587.
    monkeypatch.setenv("FINSENT_SMTP_SECURITY", security)
    monkeypatch.setenv("FINSENT_SMTP_HOST", "mail.example.com")
    from pipeline.settings import load_settings

    loaded = load_settings().settings
    assert loaded.smtp_port is None
    assert smtp_params(loaded).port == port


def test_airflow_connection_is_used_inside_airflow(settings, monkeypatch):
    conn = SimpleNamespace(
        host="smtp.bank.example",
        port=None,
        login="svc",
        password="pw",
        extra_dejson={"disable_ssl": True, "from_email": "alerts@bank.example", "timeout": 12},
    )
    _fake_airflow(monkeypatch, conn)
    p = smtp_params(settings)
    assert (p.host, p.port, p.security) == ("smtp.bank.example", 587, "starttls")
    assert (p.user, p.password, p.from_addr, p.timeout_s) == ("svc", "pw", "alerts@bank.example", 12.0)
    assert p.origin == "airflow connection smtp_default"


def test_no_smtp_anywhere_is_one_clear_error(settings, monkeypatch):
    _fake_airflow(monkeypatch, None)
    with pytest.raises(AlertError, match="FINSENT_SMTP_HOST") as err:
        make_transports(settings.model_copy(update={"alert_transport": "smtp"}))
    assert err.value.terminal


def test_transport_choice(settings):
    assert [type(t) for t in make_transports(settings)] == [OutboxTransport]
    smtp = settings.model_copy(update={"alert_transport": "smtp", "smtp_host": "localhost"})
    assert [type(t) for t in make_transports(smtp)] == [SmtpTransport]
