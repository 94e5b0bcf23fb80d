"""The Airflow plugin: declared as Airflow 3.1+ expects, found in the plugins folder the docker
deployment mounts, and serving the pages through Airflow's own mounting code."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from alerts_helpers import free_port
from fastapi import FastAPI

from pipeline.paths import REPO_ROOT

PLUGINS_FOLDER = REPO_ROOT / "docker" / "plugins"
# How long `airflow api-server` may take to answer (about 15 s on two busy cores).
STARTUP_S = 90


def test_plugin_declares_the_app_and_a_navigation_entry():
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.plugins_manager import AirflowPlugin

    from pipeline.airflow.plugin import URL_PREFIX, FinSentPlugin

    assert issubclass(FinSentPlugin, AirflowPlugin) and FinSentPlugin.name == "finsent"
    (app,) = FinSentPlugin.fastapi_apps
    assert isinstance(app["app"], FastAPI)
    assert app["url_prefix"] == URL_PREFIX and app["name"] == "FinSent"
    assert not any(URL_PREFIX.startswith(p) for p in RESERVED_URL_PREFIXES)
    (view,) = FinSentPlugin.external_views
    assert view["name"] == "FinSent" and view["destination"] == "nav"
    assert view["href"] == "finsent/" and not view["href"].startswith("/")  # relative to Airflow's base
    assert view["url_route"] == "finsent"


def test_docker_plugins_folder_is_mounted_and_loads_the_plugin():
    compose = (REPO_ROOT / "docker" / "docker-compose.yaml").read_text()
    assert "./plugins:/opt/airflow/plugins:ro" in compose
    source = (PLUGINS_FOLDER / "finsent_plugin.py").read_text()
    assert "from pipeline.airflow.plugin import FinSentPlugin" in source


def _airflow_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENT_", "AIRFLOW"))}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        AIRFLOW_HOME=str(tmp_path / "airflow-home"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        # As docker-compose.yaml gives it to every Airflow component.
        AIRFLOW_CONN_FINSENT_POSTGRES=database_url,
    )
    return env


def _kill_group(proc: subprocess.Popen) -> str:
    """Stop a process started in its own session, and everything it started (the API
    server's uvicorn workers); its output."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            out, _ = proc.communicate(timeout=wait)
            return out or ""
        except subprocess.TimeoutExpired:
            continue
    return ""


@pytest.mark.integration
@pytest.mark.slow
def test_airflow_api_server_lists_and_serves_the_plugin(tmp_path, database_url, demo_db):
    """The real thing: `airflow api-server` on a free port, its plugins folder the one the
    docker deployment mounts. `airflow plugins` lists FinSent, the API server serves its pages
    under /finsent/ and offers the "FinSent" navigation entry to Airflow's UI."""
    if os.environ.get("FINSENT_SKIP_INTEGRATION"):
        pytest.skip("integration test skipped (FINSENT_SKIP_INTEGRATION is set)")
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = _airflow_env(tmp_path, database_url)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Its own metadata database (SQLite in the temporary home: `db migrate` takes seconds).
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow-home' / 'airflow.db'}",
        # Airflow's simple auth manager, everyone an admin: the plugin list is readable
        # without a login (the pages themselves are not behind Airflow's login anyway).
        AIRFLOW__CORE__AUTH_MANAGER=(
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API_AUTH__JWT_SECRET="s" * 64,
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    )
    (tmp_path / "airflow-home").mkdir()
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]

    port = free_port()
    server = subprocess.Popen(
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: killed whole, workers included
    )
    try:
        # While the API server starts: the plugin as `airflow plugins` lists it.
        listed = subprocess.run(
            [airflow, "plugins", "-o", "json"], env=env, capture_output=True, text=True, timeout=120
        )
        assert listed.returncode == 0, listed.stderr[-3000:]
        plugins = {p["name"]: p for p in json.loads(listed.stdout[listed.stdout.index("[") :])}
        assert plugins["finsent"]["fastapi_apps"][0]["url_prefix"] == "/finsent"
        assert plugins["finsent"]["external_views"][0]["url_route"] == "finsent"

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                page = httpx.get(f"{base}/finsent/", timeout=10)
                break
            except httpx.TransportError:
                assert server.poll() is None, f"airflow api-server exited: {_kill_group(server)[-3000:]}"
                assert time.monotonic() < deadline, f"airflow api-server did not answer in {STARTUP_S} s"
                time.sleep(0.5)
        assert page.status_code == 200, page.text[-2000:]
        assert "Market overview" in page.text and 'href="./company/VLTA"' in page.text
        assert 'href="./static/style.css"' in page.text
        company = httpx.get(f"{base}/finsent/company/VLTA", timeout=10)
        assert company.status_code == 200 and "Voltara" in company.text
        assert httpx.get(f"{base}/finsent/static/style.css", timeout=10).status_code == 200
        assert httpx.get(f"{base}/finsent/company/VLTAX", timeout=10).status_code == 404
        # Read-only there without FINSENT_UI_TOKEN; an anonymous write is refused all the same.
        write = httpx.post(
            f"{base}/finsent/company/VLTA/correct", data={"article_id": "1", "label": "neutral"}, timeout=10
        )
        assert write.status_code in (401, 403)
        # What Airflow's UI builds its navigation from.
        served = httpx.get(f"{base}/api/v2/plugins", timeout=10)
        assert served.status_code == 200, served.text[-2000:]
        (finsent,) = [p for p in served.json()["plugins"] if p["name"] == "finsent"]
        (view,) = finsent["external_views"]
        assert (view["name"], view["href"], view["destination"]) == ("FinSent", "finsent/", "nav")
        assert finsent["fastapi_apps"][0]["url_prefix"] == "/finsent"
    finally:
        _kill_group(server)
    assert server.returncode is not None


@pytest.mark.slow
def test_airflow_api_server_mounts_and_serves_the_pages(tmp_path, database_url, demo_db):
    script = textwrap.dedent(
        """
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from airflow.api_fastapi.app import init_plugins

        app = FastAPI()
        init_plugins(app)  # what Airflow's API server does with plugins' fastapi_apps
        client = TestClient(app)
        page = client.get("/finsent/")
        company = client.get("/finsent/company/VLTA")
        unknown = client.get("/finsent/company/VLTAX")
        print("RESULT", page.status_code, company.status_code, unknown.status_code,
              "VLTA" in page.text, 'href="./company/VLTA"' in page.text, "Voltara" in company.text,
              'href="../company/VLTA"' in unknown.text)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=_airflow_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (result,) = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert result == ["200", "200", "404", "True", "True", "True", "True"], out.stdout[-3000:]


@pytest.mark.slow
def test_mounted_in_airflow_a_write_needs_airflows_login(tmp_path, database_url, demo_db):
    """Through Airflow's own mounting and auth manager: a write with a JWT Airflow issued and
    the UI token is stored, under the JWT's user; without the JWT, or with one Airflow did not
    sign, it is refused."""
    from sqlalchemy import delete, select

    from pipeline.db.models import Article, Correction

    from .conftest import HOSTILE_TITLE

    with demo_db.session() as s:
        article = s.scalars(select(Article.id).where(Article.title == HOSTILE_TITLE)).one()
    script = textwrap.dedent(
        f"""
        import jwt
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from airflow import settings
        from airflow.api_fastapi.app import create_auth_manager, init_plugins
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.models.revoked_token import RevokedToken

        RevokedToken.__table__.create(settings.engine, checkfirst=True)  # what `airflow db migrate` makes
        auth = create_auth_manager()
        auth.init()
        good = auth.generate_jwt(SimpleAuthManagerUser(username="ann", role="admin"))
        forged = jwt.encode({{"sub": "ann", "role": "admin"}}, "x" * 64, algorithm="HS512")
        app = FastAPI()
        init_plugins(app)
        client = TestClient(app)
        form = {{"article_id": "{article}", "label": "neutral", "who": "mallory"}}
        ui = {{"Authorization": "Bearer test-ui-token-for-airflow"}}

        def post(headers, cookies=None):
            client.cookies.clear()
            for k, v in (cookies or {{}}).items():
                client.cookies.set(k, v)
            r = client.post(
                "/finsent/company/VLTA/correct", data=form, headers=headers, follow_redirects=False
            )
            return str(r.status_code)

        print("RESULT", post(ui), post(ui, {{"_token": forged}}), post({{}}, {{"_token": good}}),
              post(ui, {{"_token": good}}))
        """
    )
    env = _airflow_env(tmp_path, database_url)
    env.update(
        FINSENT_UI_TOKEN="test-ui-token-for-airflow",
        AIRFLOW__API_AUTH__JWT_SECRET="s" * 64,
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr[-3000:]
        (result,) = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        # No JWT: 401; a JWT Airflow did not sign: 401; Airflow's login without the UI token:
        # 403; both: stored (303).
        assert result == ["401", "401", "403", "303"], out.stdout[-3000:]
        # Under the Airflow user the JWT names, not the form's "who".
        with demo_db.session() as s:
            assert [c.corrected_by for c in s.scalars(select(Correction))] == ["ann"]
    finally:
        with demo_db.transaction() as s:
            s.execute(delete(Correction))
