"""Connecting: what the server refuses for good is a config error, an outage is transient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from pipeline.db.engine import open_database
from pipeline.errors import ConfigError, DatabaseError
from pipeline.settings import load_settings


@pytest.fixture
def tcp_server(pg_server_url: str) -> Iterator:
    url = make_url(pg_server_url)
    if not url.host:
        pytest.skip("needs a PostgreSQL server on TCP (FINSENT_TEST_DATABASE_URL)")
    yield url


def _open(url) -> None:
    settings = load_settings(database_url=url.render_as_string(hide_password=False)).settings
    open_database(settings).close()


@pytest.mark.parametrize(
    ("change", "culprit"),
    [
        ({"username": "finsent_no_such_role"}, 'role "finsent_no_such_role" does not exist'),
        ({"database": "finsent_no_such_database"}, 'database "finsent_no_such_database" does not exist'),
    ],
)
def test_a_login_the_server_refuses_is_a_config_error_not_retried(tcp_server, change, culprit) -> None:
    with pytest.raises(ConfigError) as info:
        _open(tcp_server.set(**change))
    err = info.value
    message = str(err)
    assert not err.transient and err.stage == "database"
    assert culprit in message and "FINSENT_DATABASE_URL" in message and "finsent_postgres" in message
    assert "\n" not in message


def test_a_server_that_is_not_there_stays_transient(tcp_server) -> None:
    with pytest.raises(DatabaseError) as info:
        _open(tcp_server.set(port=1))
    assert info.value.transient and "cannot connect" in str(info.value)


def test_the_refusals_are_recognised_by_sqlstate_or_by_libpq_message() -> None:
    from pipeline.db.engine import login_refused

    class Orig(Exception):
        def __init__(self, text: str, pgcode: str | None = None) -> None:
            super().__init__(text)
            self.pgcode = pgcode

    assert login_refused(Orig("FATAL: whatever", "28P01"))
    assert login_refused(Orig("FATAL: whatever", "3D000"))
    assert login_refused(Orig('FATAL:  password authentication failed for user "fin"'))
    assert login_refused(Orig('FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "fin"'))
    assert not login_refused(Orig("FATAL: the database system is shutting down", "57P03"))
    assert not login_refused(Orig("Connection refused\n\tIs the server running on that host?"))
    assert not login_refused(Orig("timeout expired"))
    assert not login_refused(Orig("FATAL:  sorry, too many clients already", "53300"))
    # An LDAP, RADIUS or PAM server behind PostgreSQL answers 28P01 when it is down too.
    assert not login_refused(Orig('FATAL:  LDAP authentication failed for user "fin"', "28P01"))
    assert not login_refused(Orig('FATAL:  RADIUS authentication failed for user "fin"'))
    assert not login_refused(Orig('FATAL:  PAM authentication failed for user "fin"', "28P01"))
