"""The ``finsent`` command line.

Subcommands live in one module each and are imported only when used, so ``finsent
--help`` stays fast (no torch). Every failure a user can cause ends in one line on
stderr and a non-zero exit code, never a traceback (``-v`` adds the traceback for bug
reports).
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pipeline import __version__
from pipeline.errors import FinSentError, first_line
from pipeline.masking import MaskingFilter, mask_secrets

__all__ = ["COMMANDS", "AppContext", "FinSentCLI", "LazyGroup", "cli", "main"]

log = logging.getLogger(__name__)

# name -> "module:attribute"; the order is the order of `finsent --help`.
COMMANDS: dict[str, str] = {
    "run": "pipeline.cli.run:run_cmd",
    "ingest": "pipeline.cli.ingest:ingest_cmd",
    "score": "pipeline.cli.run:score_cmd",
    "alerts": "pipeline.cli.alerts:alerts",
    "trends": "pipeline.cli.trends:trends_cmd",
    "feeds": "pipeline.cli.feeds:feeds",
    "companies": "pipeline.cli.companies:companies_cmd",
    "feedback": "pipeline.cli.feedback:feedback",
    "serve": "pipeline.cli.serve:serve_cmd",
    "classify": "pipeline.cli.sentiment:classify_cmd",
    "train": "pipeline.cli.sentiment:train_cmd",
    "eval": "pipeline.cli.sentiment:eval_cmd",
    "crossfit": "pipeline.cli.sentiment:crossfit_cmd",
    "augment": "pipeline.cli.sentiment:augment_cmd",
    "db": "pipeline.cli.db:db",
    "config": "pipeline.cli.config:config_cmd",
}

EXIT_ERROR = 1
EXIT_USAGE = 2
# SQLSTATE 25006: a write in a read-only transaction (`finsent db create-readonly-role`'s roles).
READ_ONLY_TRANSACTION = "25006"
EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process that SIGTERM ended


class Terminated(BaseException):
    """SIGTERM arrived (``kill``, systemd, ``docker stop``).

    Python's default action ends the process on the spot: no ``finally`` runs, so an
    embedded PostgreSQL started by this process kept running after ``finsent serve`` was
    stopped that way. Raised instead, it unwinds like Ctrl-C: open transactions roll back and
    the database handle is released (the server stops when this was its last user).
    """


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` while a command runs; the old handler after."""
    if threading.current_thread() is not threading.main_thread():  # signals reach only main
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class AppContext:
    """What every command gets as ``ctx.obj``: settings and the database, opened lazily."""

    def __init__(
        self,
        config_file: Path | None = None,
        overrides: dict[str, Any] | None = None,
        *,
        log_level_fixed: bool = False,
    ):
        self.config_file = config_file
        self.overrides = dict(overrides or {})
        # -v / -q on the command line beat FINSENT_LOG_LEVEL.
        self.log_level_fixed = log_level_fixed
        self._loaded = None

    @property
    def loaded(self):  # -> pipeline.settings.LoadedSettings
        if self._loaded is None:
            from pipeline.settings import load_settings

            self._loaded = load_settings(self.config_file, **self.overrides)
            if not self.log_level_fixed:
                logging.getLogger().setLevel(self._loaded.settings.log_level)
        return self._loaded

    @property
    def settings(self):  # -> pipeline.settings.Settings
        return self.loaded.settings

    @contextmanager
    def database(self, *, migrate: bool | None = None, check_schema: bool = True) -> Iterator[Any]:
        """The database, closed on exit. ``migrate`` None: the embedded database belongs to
        FinSent and is brought up to date by every command; an external one is only checked
        (a stale schema is refused) unless asked."""
        from pipeline.db import open_database

        if migrate is None:
            migrate = check_schema and self.settings.database_url is None
        db = open_database(self.settings, migrate=migrate, check_schema=check_schema)
        try:
            yield db
        finally:
            db.close()


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = [name for name in super().list_commands(ctx) if name not in self.lazy]
        return [*self.lazy, *sorted(eager)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attr = self.lazy[name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:  # that stage is not installed in this build
                    return None
                raise
            return getattr(module, attr)
        return super().get_command(ctx, name)


class FinSentCLI(LazyGroup):
    """The top-level group: turns every expected error into one line."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        debug = "-v" in (args if args is not None else sys.argv[1:]) or "--verbose" in (
            args if args is not None else sys.argv[1:]
        )
        # A line at a time also into a file (cron's `>> log 2>&1`): block-buffered, a run's
        # summary on stdout landed after every log line on stderr.
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
        try:
            with _sigterm_unwinds():
                rv = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("finsent: aborted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            click.echo(f"finsent: error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except FinSentError as exc:
            if debug:
                log.exception("failed")
            click.echo(f"finsent: error: {mask_secrets(str(exc))}", err=True)
            sys.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("finsent: interrupted", err=True)
            sys.exit(130)
        except Terminated:
            click.echo("finsent: terminated", err=True)
            sys.exit(EXIT_TERMINATED)
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if debug:
                raise
            if isinstance(exc, SQLAlchemyError):
                orig = getattr(exc, "orig", None)
                hint = ""
                if getattr(orig, "pgcode", None) == READ_ONLY_TRANSACTION:
                    hint = ": this command writes, and the database role it connects as is read-only"
                click.echo(f"finsent: error: database: {first_line(orig or exc)}{hint}", err=True)
            else:
                click.echo(
                    f"finsent: error: unexpected {type(exc).__name__}: {mask_secrets(str(exc))} "
                    "(re-run with -v for the traceback and report it)",
                    err=True,
                )
            sys.exit(EXIT_ERROR)
        sys.exit(rv if isinstance(rv, int) else 0)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # A driver's error or a library's debug line may quote a database URL with its password.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
    # Third-party chatter is not what a FinSent user came for.
    for noisy in ("httpx", "httpcore", "alembic", "pgserver", "filelock", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)


@click.group(
    cls=FinSentCLI,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FINSENT_CONFIG",
    help="TOML config file (default: $FINSENT_CONFIG, else ~/.config/finsent/finsent.toml).",
)
@click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Override FINSENT_DATA_DIR."
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv: also libraries); tracebacks.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Log only warnings and errors (a command's own summary still prints)."
)
@click.version_option(__version__, prog_name="finsent")
@click.pass_context
def cli(
    ctx: click.Context, config_file: Path | None, data_dir: Path | None, verbose: int, quiet: bool
) -> None:
    """FinSent: financial news sentiment monitoring.

    Ingest RSS/Atom feeds, score every new item with a fine-tuned transformer, store
    articles and scores in PostgreSQL, and alert on negative-sentiment spikes.

    Quick start: `finsent run --demo` (embedded PostgreSQL, bundled demo feeds, released
    model, alerts as .eml files in the data dir's outbox).
    """
    _setup_logging(verbose, quiet)
    # Taken from FINSENT_CONFIG: load_settings reads it itself, and names it in its errors.
    from_env = ctx.get_parameter_source("config_file") == click.core.ParameterSource.ENVIRONMENT
    ctx.obj = AppContext(
        config_file=None if from_env else config_file,
        overrides={"data_dir": data_dir},
        log_level_fixed=bool(verbose or quiet),
    )


def main() -> None:
    cli.main(prog_name="finsent")
