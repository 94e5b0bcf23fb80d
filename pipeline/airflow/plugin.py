"""The Airflow plugin: FinSent's web pages inside Airflow's UI (Airflow 3.1+).

``fastapi_apps`` mounts the same app ``finsent serve`` runs under the API server at
``/finsent``; ``external_views`` adds a "FinSent" entry to Airflow's navigation that shows it
in a frame. The pages link relatively, so they work under that prefix unchanged.

The database is the one the tasks use (Airflow connection ``finsent_postgres`` or
FINSENT_DATABASE_URL), opened on the first page request, never at import: the API server,
the scheduler and ``airflow plugins`` import this module without needing the database.
Airflow does not authenticate plugin apps: the pages are as visible as the API server is,
so each write must carry both FinSent's UI token (FINSENT_UI_TOKEN; unset: read-only) and a
valid Airflow login (:mod:`pipeline.airflow.web_auth`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pipeline.airflow.web_auth import require_airflow_user
from pipeline.web import create_app

URL_PREFIX = "/finsent"


def _open_database():
    from pipeline.airflow.config import postgres_conn_id, task_settings
    from pipeline.db.engine import open_database
    from pipeline.errors import ConfigError

    settings = task_settings()
    if settings.database_url is None:
        # As for the tasks (pipeline.airflow.runtime.database): an embedded server in the API
        # server's container would be a different, empty database from the workers' one.
        raise ConfigError(
            "no database configured for Airflow: define the Airflow connection "
            f"'{postgres_conn_id()}' or set FINSENT_DATABASE_URL on the API server"
        )
    # Never migrates (airflow-init does, once per deployment); kept open for the app's life.
    return open_database(settings, migrate=False, check_schema=True)


def _ui_token() -> str | None:
    # Read per request (settings may come from Airflow's connection and variables, which
    # need Airflow's database: never at import).
    from pipeline.airflow.config import task_settings

    secret = task_settings().ui_token
    return secret.get_secret_value() if secret is not None else None


def _user_header() -> str | None:
    from pipeline.airflow.config import task_settings

    return task_settings().web_trusted_user_header


def _universe():
    from pipeline.airflow.config import task_settings
    from pipeline.companies.universe import companies_for

    return companies_for(task_settings())


def build_app():
    """The app as the plugin mounts it (tests build it the same way)."""
    return create_app(
        _open_database,
        token=_ui_token,
        write_guard=require_airflow_user,
        user_header=_user_header,
        universe=_universe,
    )


class FinSentPlugin(AirflowPlugin):
    name = "finsent"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin declares these as class-level lists)
        {"app": build_app(), "url_prefix": URL_PREFIX, "name": "FinSent"},
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "FinSent",
            # Relative: Airflow resolves it against its own base URL (which may carry a prefix).
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "finsent",
            "destination": "nav",
            "nav_top_level": True,  # Airflow >= 3.2: its own entry, not under "Plugins"
        },
    ]


__all__ = ["URL_PREFIX", "FinSentPlugin", "build_app"]
