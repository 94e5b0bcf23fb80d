"""``finsent serve``: the web app (market, company, alert and feed pages) on its own."""

from __future__ import annotations

import errno
import logging
import socket

import click

log = logging.getLogger(__name__)


#: What to give --host instead of an address that is not this machine's.
_HOST_HINT = "give one of its addresses, 127.0.0.1 or 0.0.0.0 (every interface)"


def _check_port(host: str, port: int) -> None:
    """Fail in one line before uvicorn starts when the address cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.BadParameter(
            f"{host!r} is not an address of this machine ({exc}): {_HOST_HINT}",
            param_hint="--host",
        ) from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:  # the port is not the problem
                raise click.BadParameter(
                    f"{host} is not an address of this machine ({exc.strerror}): {_HOST_HINT}",
                    param_hint="--host",
                ) from None
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            raise click.ClickException(
                f"port {port} on {host} {why}: stop what uses it or choose another with --port"
            ) from None


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface; writes need FINSENT_UI_TOKEN).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True)
@click.pass_obj
def serve_cmd(app, host: str, port: int) -> None:
    """Serve the web pages: market overview, companies, alerts and feeds.

    Reads the same database as the other commands (the embedded one unless
    FINSENT_DATABASE_URL is set): `finsent run --demo && finsent serve` shows the demo at
    http://127.0.0.1:8050/. Stop it with Ctrl-C.
    """
    import uvicorn

    from pipeline.web import create_app
    from pipeline.web.hosts import HostCheck, loopback_hosts

    _check_port(host, port)
    secret = app.settings.ui_token
    token = secret.get_secret_value() if secret is not None else None  # validated: never empty
    with app.database() as db:
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"database: {db.display_url}{' (embedded)' if db.embedded else ''}")
        click.echo(f"FinSent on http://{shown}:{port}/ (Ctrl-C stops it)")
        if token is None:
            click.echo("read-only: set FINSENT_UI_TOKEN to allow corrections and silences")
        from pipeline.companies.universe import companies_for

        web = create_app(
            db,
            token=token,
            user_header=app.settings.web_trusted_user_header,
            universe=lambda: companies_for(app.settings),
        )
        allowed = loopback_hosts(host, app.settings.web_url)
        served = web if allowed is None else HostCheck(web, allowed)  # see pipeline/web/hosts.py
        from pipeline.cli import Terminated

        try:
            uvicorn.run(served, host=host, port=port, log_level="warning", access_log=False)
        except Terminated:
            # uvicorn shut down gracefully, then passed SIGTERM on. For a server, SIGTERM is how
            # systemd and `docker stop` stop it: exit 0, or systemd records a failure (143).
            click.echo("finsent serve: stopped (SIGTERM)", err=True)
