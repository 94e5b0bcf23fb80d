"""``finsent config``: the effective settings, secrets masked, with their sources."""

from __future__ import annotations

import json

import click

from pipeline.settings import Settings, display_value, json_value


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def config_cmd(app, as_json: bool) -> None:
    """Show the effective settings and where each value came from.

    Precedence, highest first: command-line flags, FINSENT_* environment variables, the
    config file, defaults. Passwords are always shown as ***.
    """
    loaded = app.loaded
    if as_json:
        typed = {
            name: {"value": json_value(name, getattr(loaded.settings, name)), "source": loaded.sources[name]}
            for name in Settings.model_fields
        }
        click.echo(json.dumps(typed, indent=2))
        return
    rows = [
        (name, display_value(name, getattr(loaded.settings, name)), loaded.sources[name])
        for name in Settings.model_fields
    ]
    click.echo(f"config file: {loaded.config_file or '(none)'}")
    width = max(len(n) for n, _, _ in rows)
    vwidth = min(max(len(v) for _, v, _ in rows), 60)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value:<{vwidth}}  [{source}]")
