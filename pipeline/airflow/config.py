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


def database_url_from_connection(conn: ConnectionLike) -> str:
    """A SQLAlchemy URL from an Airflow ``postgres`` connection (schema = database name)."""
    from sqlalchemy.engine import URL

    if not conn.host:
        raise ConfigError(f"Airflow connection '{postgres_conn_id()}' has no host: set the PostgreSQL host")
    # A host that is a directory is a Unix socket (libpq's rule); it goes in the query, since
    # a URL's host part cannot hold a path.
    socket_dir = conn.host.startswith("/")
    url = URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=None if socket_dir else conn.host,
        port=conn.port or None,
        database=conn.schema or None,
        query={"host": conn.host} if socket_dir else {},
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
