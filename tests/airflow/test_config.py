"""Task settings from FINSENT_ env, the Airflow Variable and the Airflow connections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from pipeline.airflow.config import (
    airflow_overrides,
    database_url_from_connection,
    smtp_from_connection,
    task_settings,
)
from pipeline.errors import ConfigError


@dataclass
class Conn:
    """The attributes of ``airflow.sdk.Connection`` the config reads."""

    conn_type: str
    host: str | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    port: int | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)


def lookups(connections: dict[str, Conn] | None = None, variables: dict[str, Any] | None = None):
    connections = connections or {}
    variables = variables or {}
    return connections.get, variables.get


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("FINSENT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_postgres_connection_becomes_the_database_url() -> None:
    conn = Conn(
        "postgres", host="db.internal", login="fin", password="p@ss/word", schema="finsent", port=6543
    )
    url = database_url_from_connection(conn)
    assert url == "postgresql+psycopg2://fin:p%40ss%2Fword@db.internal:6543/finsent"


def test_postgres_connection_over_a_unix_socket() -> None:
    from sqlalchemy.engine import make_url

    url = database_url_from_connection(Conn("postgres", host="/run/post gresql", login="fin", schema="db"))
    parsed = make_url(url)
    assert parsed.host is None and parsed.query["host"] == "/run/post gresql"
    assert (parsed.username, parsed.database) == ("fin", "db")


def test_postgres_connection_without_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="has no host"):
        database_url_from_connection(Conn("postgres"))


@pytest.mark.parametrize(
    ("extra", "security"),
    [
        ({}, "ssl"),
        ({"disable_ssl": True}, "starttls"),
        ({"disable_ssl": "true", "disable_tls": "true"}, "none"),
        ({"security": "starttls", "disable_ssl": False}, "starttls"),
    ],
)
def test_smtp_connection_follows_the_provider_extras(extra: dict[str, Any], security: str) -> None:
    conn = Conn("smtp", host="mail", port=2525, login="u", password="pw", extra_dejson=extra)
    values = smtp_from_connection(conn)
    assert values["smtp_security"] == security
    assert (values["smtp_host"], values["smtp_port"], values["smtp_user"]) == ("mail", 2525, "u")


def test_connections_and_variable_build_the_settings(tmp_path) -> None:
    connection, variable = lookups(
        {
            "finsent_postgres": Conn("postgres", host="pg", login="a", schema="fs"),
            "finsent_smtp": Conn(
                "smtp", host="mail", port=25, extra_dejson={"disable_ssl": True, "from_email": "a@b.c"}
            ),
        },
        {"finsent": {"alert_recipients": ["x@y.z"], "data_dir": str(tmp_path), "score_batch_size": 8}},
    )
    settings = task_settings(connection, variable)
    assert settings.database_url.get_secret_value() == "postgresql+psycopg2://a@pg/fs"
    assert settings.alert_transport == "smtp"
    assert settings.smtp_security == "starttls"
    assert settings.smtp_from == "a@b.c"
    assert settings.alert_recipients == ["x@y.z"]
    assert settings.score_batch_size == 8


def test_finsent_env_beats_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_DATABASE_URL", "postgresql://env-host/db")
    monkeypatch.setenv("FINSENT_SCORE_BATCH_SIZE", "16")
    connection, variable = lookups(
        {"finsent_postgres": Conn("postgres", host="pg")}, {"finsent": {"score_batch_size": 8}}
    )
    assert airflow_overrides(connection, variable) == {}
    settings = task_settings(connection, variable)
    assert settings.database_url.get_secret_value() == "postgresql://env-host/db"
    assert settings.score_batch_size == 16


def test_variable_can_keep_the_outbox_despite_an_smtp_connection() -> None:
    connection, variable = lookups(
        {"finsent_smtp": Conn("smtp", host="mail")}, {"finsent": {"alert_transport": "outbox"}}
    )
    assert task_settings(connection, variable).alert_transport == "outbox"


def test_connection_ids_can_be_renamed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_AIRFLOW_POSTGRES_CONN_ID", "warehouse")
    connection, variable = lookups({"warehouse": Conn("postgres", host="wh")})
    assert airflow_overrides(connection, variable)["database_url"].startswith("postgresql+psycopg2://wh")
    with pytest.raises(ConfigError, match="connection 'warehouse' has no host"):  # the id in use
        database_url_from_connection(Conn("postgres"))


def test_unknown_variable_key_names_the_culprit() -> None:
    connection, variable = lookups(variables={"finsent": {"alert_treshold": 2}})
    with pytest.raises(ConfigError, match=r"unknown setting.*alert_treshold"):
        task_settings(connection, variable)


def test_renamed_variable_key_says_what_replaced_it() -> None:
    connection, variable = lookups(variables={"finsent": {"model_quantize": False}})
    with pytest.raises(ConfigError, match=r"'model_quantize' was replaced by 'model_precision'"):
        task_settings(connection, variable)


def test_variable_that_is_not_an_object_is_a_config_error() -> None:
    connection, variable = lookups(variables={"finsent": ["not", "a", "dict"]})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        task_settings(connection, variable)


def test_invalid_value_from_airflow_is_one_line() -> None:
    connection, variable = lookups(variables={"finsent": {"score_batch_size": 0}})
    with pytest.raises(ConfigError, match="score_batch_size") as info:
        task_settings(connection, variable)
    assert "\n" not in str(info.value)


def test_an_empty_env_variable_does_not_hide_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker compose sets FINSENT_FEEDS=${FINSENT_FEEDS:-}: present but empty, which means unset.
    for name in ("FEEDS", "ALERT_RECIPIENTS", "UI_TOKEN"):
        monkeypatch.setenv(f"FINSENT_{name}", "")
    token = "a-long-enough-ui-token"
    connection, variable = lookups(
        variables={"finsent": {"feeds": ["https://a/rss"], "alert_recipients": ["x@y.z"], "ui_token": token}}
    )
    assert airflow_overrides(connection, variable) == {
        "feeds": ["https://a/rss"],
        "alert_recipients": ["x@y.z"],
        "ui_token": token,
    }
    settings = task_settings(connection, variable)
    assert settings.feeds == ["https://a/rss"] and settings.alert_recipients == ["x@y.z"]
    assert settings.ui_token is not None and settings.ui_token.get_secret_value() == token


def test_libpq_extras_of_the_postgres_connection_reach_the_driver() -> None:
    from sqlalchemy.engine import make_url

    from pipeline.db.engine import make_engine

    extras = {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/my ca.pem",
        "connect_timeout": 10,
        "keepalives": True,
        "options": "-c search_path=finsent&x",
        "target_session_attrs": "read-write",
        "cursor": "dictcursor",  # the provider's own: not libpq's, ignored
        "iam": False,
    }
    url = database_url_from_connection(
        Conn("postgres", host="db", login="fin", schema="fs", extra_dejson=extras)
    )
    args = make_engine(url).dialect.create_connect_args(make_url(url))[1]
    assert args["sslmode"] == "verify-full" and args["sslrootcert"] == "/etc/ssl/my ca.pem"
    assert (args["connect_timeout"], args["keepalives"]) == ("10", "1")
    assert args["options"] == "-c search_path=finsent&x" and args["target_session_attrs"] == "read-write"
    assert "cursor" not in args and "iam" not in args


def test_the_provider_sqlalchemy_query_extra_is_read_too() -> None:
    from sqlalchemy.engine import make_url

    extras = {"sqlalchemy_query": {"sslmode": "require"}, "application_name": "finsent"}
    url = make_url(database_url_from_connection(Conn("postgres", host="db", extra_dejson=extras)))
    assert dict(url.query) == {"sslmode": "require", "application_name": "finsent"}


def test_an_ssl_password_extra_is_masked_in_the_display_url() -> None:
    from pipeline.db.engine import normalise_url
    from pipeline.masking import mask_url

    conn = Conn("postgres", host="db", login="fin", password="pw1", extra_dejson={"sslpassword": "k3y"})
    shown = mask_url(normalise_url(database_url_from_connection(conn)))
    assert "pw1" not in shown and "k3y" not in shown and "sslpassword=***" in shown


@pytest.mark.parametrize(
    ("extras", "fragment"),
    [
        ({"ssl_mode": "verify-full"}, "unknown extra 'ssl_mode' (did you mean 'sslmode'?)"),
        ({"sslmode": "require", "sslrootcrt": "/ca.pem"}, "unknown extra 'sslrootcrt'"),
        ({"iam": True}, "extra 'iam' is not supported"),
        ({"redshift": "true", "iam": "false"}, "extra 'redshift' is not supported"),
        ({"password": "x"}, "extra 'password' repeats a field: set it in the connection's Password field"),
        ({"sslmode": ["require"]}, "extra 'sslmode' is a list"),
        ({"sslmode": "require", "sqlalchemy_query": {"sslmode": "disable"}}, "sets 'sslmode' twice"),
    ],
)
def test_an_extra_that_is_not_a_libpq_parameter_is_refused(extras: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        database_url_from_connection(Conn("postgres", host="db", extra_dejson=extras))
    message = str(info.value)
    assert fragment in message and "connection 'finsent_postgres'" in message
    assert "\n" not in message and not info.value.transient


def test_connection_extras_apply_on_a_real_server(pg_server_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from pipeline.db.engine import make_engine

    server = make_url(pg_server_url)
    if not server.host:
        pytest.skip("needs a PostgreSQL server on TCP (FINSENT_TEST_DATABASE_URL)")
    conn = Conn(
        "postgres",
        host=server.host,
        port=server.port,
        login=server.username,
        password=server.password,
        schema=server.database,
        extra_dejson={"application_name": "finsent extras", "options": "-c statement_timeout=4321"},
    )
    engine = make_engine(database_url_from_connection(conn))
    try:
        with engine.connect() as db:
            assert db.execute(text("SHOW application_name")).scalar() == "finsent extras"
            assert db.execute(text("SHOW statement_timeout")).scalar() == "4321ms"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("extra", "security", "port"),
    [({}, "ssl", 465), ({"disable_ssl": True, "disable_tls": "true"}, "none", 25)],
)
def test_an_smtp_connection_without_a_port_gets_the_port_of_its_security(
    tmp_path, extra: dict[str, Any], security: str, port: int
) -> None:
    # The provider's default is implicit TLS: a host alone must reach port 465, not 587/25.
    from pipeline.alerts.transports.smtp import smtp_params

    connection, variable = lookups(
        {"finsent_smtp": Conn("smtp", host="mail.example.com", extra_dejson=extra)},
        {"finsent": {"data_dir": str(tmp_path)}},
    )
    settings = task_settings(connection, variable)
    assert settings.smtp_port is None
    params = smtp_params(settings)
    assert (params.host, params.security, params.port) == ("mail.example.com", security, port)
