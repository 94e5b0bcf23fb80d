"""Settings for a task: FINSENT_* environment, an Airflow Variable and Airflow connections.

Precedence, highest first: ``FINSENT_*`` environment variables (set per deployment or per
worker, e.g. a GPU worker's model path; an empty one is unset, as docker compose passes the
ones .env leaves out), the JSON Variable ``finsent`` (a dict of setting names to values,
editable in the UI), the connections ``finsent_postgres`` and
``finsent_smtp``, then the config file and defaults (see :mod:`pipeline.settings`).
Connection ids can be renamed with ``FINSENT_AIRFLOW_POSTGRES_CONN_ID`` /
``FINSENT_AIRFLOW_SMTP_CONN_ID``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pipeline.alerts.transports.smtp import smtp_from_connection
from pipeline.errors import ConfigError
from pipeline.settings import Settings, check_renamed_keys, env_has, load_settings

log = logging.getLogger(__name__)

SETTINGS_VARIABLE = "finsent"
POSTGRES_CONN_ID = "finsent_postgres"
SMTP_CONN_ID = "finsent_smtp"


class ConnectionLike(Protocol):
    conn_type: str | None
    host: str | None
    login: str | None
    password: str | None
    schema: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


ConnectionLookup = Callable[[str], ConnectionLike | None]
VariableLookup = Callable[[str], Any]


def airflow_connection(conn_id: str) -> ConnectionLike | None:
    """The Airflow connection, or None when it is not defined (runs inside a task)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def airflow_variable(key: str) -> Any:
    """The JSON Airflow Variable, or None when it is not defined (runs inside a task)."""
    from airflow.sdk import Variable

    try:
        return Variable.get(key, default=None, deserialize_json=True)
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError(
            f"Airflow Variable '{key}' is not valid JSON ({exc}): fix it in Admin > Variables"
        ) from None


def postgres_conn_id() -> str:
    """The Airflow connection FinSent's database comes from (renamed by the env var)."""
    # Empty is unset, like every FINSENT_* variable (compose passes unset ones as "").
    return os.environ.get("FINSENT_AIRFLOW_POSTGRES_CONN_ID") or POSTGRES_CONN_ID


#: libpq's connection parameters (PostgreSQL 17's libpq, the one psycopg2 bundles) that a
#: connection's extras may set: they go into the URL's query, which psycopg2 hands to libpq.
#: host, port, dbname, user and password are left out: the connection's own fields hold them.
LIBPQ_PARAMS = frozenset(
    {
        "hostaddr",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "gssencmode",
        "sslmode",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    }
)
#: libpq parameters that duplicate a field of the connection form.
_FIELD_PARAMS = {"host": "Host", "port": "Port", "dbname": "Schema", "user": "Login", "password": "Password"}
#: Extras of Airflow's postgres provider that only its own hook reads (its cursor class, its
#: SQLAlchemy driver, the cloud connection an IAM token comes from): not libpq's, and
#: harmless here. The IAM switches themselves are refused (_UNSUPPORTED_EXTRAS).
_PROVIDER_EXTRAS = frozenset(
    {"cursor", "sqlalchemy_scheme", "aws_conn_id", "azure_conn_id", "cluster-identifier", "workgroup-name"}
)
#: Provider extras that change how the hook logs in: ignoring them would connect without
#: the token the deployment expects, so they are refused rather than dropped.
_UNSUPPORTED_EXTRAS = ("iam", "redshift", "redshift-serverless")


def _switched_on(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "off"}
    return bool(value)


def _libpq_value(conn_id: str, key: str, value: Any) -> str:
    if isinstance(value, bool):  # JSON true/false; libpq's switches are 1/0 (keepalives, sslsni)
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(
        f"Airflow connection '{conn_id}' extra '{key}' is a {type(value).__name__}: give a string or a number"
    )


def _libpq_query(conn_id: str, extras: Mapping[str, Any]) -> dict[str, str]:
    """The connection's extras as libpq parameters for the URL's query. An extra that is
    neither libpq's nor the provider's is refused: dropped silently, ``sslmode=verify-full``
    misspelt would connect with libpq's default ``prefer``, without checking the server."""
    for key in _UNSUPPORTED_EXTRAS:
        if _switched_on(extras.get(key)):
            raise ConfigError(
                f"Airflow connection '{conn_id}' extra '{key}' is not supported: FinSent logs in "
                "with the connection's Login and Password; remove the extra and set them"
            )
    merged: dict[str, Any] = {}
    nested = extras.get("sqlalchemy_query") or {}
    if not isinstance(nested, Mapping):
        raise ConfigError(
            f"Airflow connection '{conn_id}' extra 'sqlalchemy_query' must be a JSON object of "
            "libpq parameters"
        )
    # The provider's sqlalchemy_query is the query of the URL it builds: the same parameters.
    for source in (nested, extras):
        for key, value in source.items():
            if key in _PROVIDER_EXTRAS or key in _UNSUPPORTED_EXTRAS or key == "sqlalchemy_query":
                continue
            if key in _FIELD_PARAMS:
                raise ConfigError(
                    f"Airflow connection '{conn_id}' extra '{key}' repeats a field: set it in the "
                    f"connection's {_FIELD_PARAMS[key]} field and remove the extra"
                )
            if key not in LIBPQ_PARAMS:
                hint = next(iter(difflib.get_close_matches(key, sorted(LIBPQ_PARAMS), n=1)), None)
                extra = f" (did you mean '{hint}'?)" if hint else ""
                raise ConfigError(
                    f"Airflow connection '{conn_id}' has unknown extra '{key}'{extra}: not a libpq "
                    "connection parameter; fix or remove it"
                )
            if value is None:
                continue
            text = _libpq_value(conn_id, key, value)
            if merged.get(key, text) != text:
                raise ConfigError(
                    f"Airflow connection '{conn_id}' sets '{key}' twice, differently (as an extra and "
                    "in sqlalchemy_query): keep one"
                )
            merged[key] = text
    return merged


def database_url_from_connection(conn: ConnectionLike) -> str:
    """A SQLAlchemy URL from an Airflow ``postgres`` connection (schema = database name),
    with the extras that are libpq parameters (sslmode, sslrootcert, ...) in its query."""
    from sqlalchemy.engine import URL

    conn_id = postgres_conn_id()
    if not conn.host:
        raise ConfigError(f"Airflow connection '{conn_id}' has no host: set the PostgreSQL host")
    query = _libpq_query(conn_id, conn.extra_dejson or {})
    # A host that is a directory is a Unix socket (libpq's rule); it goes in the query, since
    # a URL's host part cannot hold a path.
    socket_dir = conn.host.startswith("/")
    if socket_dir:
        query["host"] = conn.host
    url = URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=None if socket_dir else conn.host,
        port=conn.port or None,
        database=conn.schema or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def airflow_overrides(
    connection: ConnectionLookup = airflow_connection,
    variable: VariableLookup = airflow_variable,
) -> dict[str, Any]:
    """Setting values from Airflow (Variable and connections), minus those the env sets."""
    values: dict[str, Any] = {}
    pg_id = postgres_conn_id()
    smtp_id = os.environ.get("FINSENT_AIRFLOW_SMTP_CONN_ID") or SMTP_CONN_ID
    pg = connection(pg_id)
    if pg is not None:
        values["database_url"] = database_url_from_connection(pg)
    smtp = connection(smtp_id)
    if smtp is not None:
        values.update(smtp_from_connection(smtp))
        # A configured SMTP connection means "send"; the Variable or env can still say outbox.
        values["alert_transport"] = "smtp"
    raw = variable(SETTINGS_VARIABLE)
    if raw is not None:
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"Airflow Variable '{SETTINGS_VARIABLE}' must be a JSON object of setting names "
                f"to values (got {type(raw).__name__}): fix it in Admin > Variables"
            )
        check_renamed_keys(raw, f"Airflow Variable '{SETTINGS_VARIABLE}'", ": fix it in Admin > Variables")
        unknown = sorted(set(raw) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(
                f"Airflow Variable '{SETTINGS_VARIABLE}' has unknown setting(s) {', '.join(unknown)}: "
                "see `finsent config` for the names"
            )
        values.update(raw)
    return {name: value for name, value in values.items() if not env_has(name)}


def task_settings(
    connection: ConnectionLookup = airflow_connection,
    variable: VariableLookup = airflow_variable,
) -> Settings:
    """The effective settings for a task (see the module docstring for precedence)."""
    overrides = airflow_overrides(connection, variable)
    shown = sorted(k for k in overrides if k not in {"database_url", "smtp_password"})
    log.info("settings from Airflow: %s", ", ".join(shown) or "(none)")
    return load_settings(**overrides).settings
