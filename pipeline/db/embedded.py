"""An embedded PostgreSQL server in the data dir, for machines without one.

pgserver ships PostgreSQL binaries in a wheel. The server listens on a Unix socket only,
is reused by every FinSent process that opens the same data dir, and stops when the last
of them exits (pgserver counts the handles per process).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from pipeline.errors import DatabaseError, first_line

log = logging.getLogger(__name__)

DATABASE_NAME = "finsent"


class EmbeddedPostgres:
    """A handle on the embedded server; ``close()`` releases it (stopping it if last)."""

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self._server = None

    def start(self) -> str:
        """Start (or attach to) the server and return a SQLAlchemy URL for the database."""
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers): harmless.
                warnings.simplefilter("ignore")
                import pgserver
        except ImportError:  # pragma: no cover - pgserver is a hard dependency
            raise DatabaseError(
                "embedded PostgreSQL needs the 'pgserver' package: pip install pgserver, "
                "or set FINSENT_DATABASE_URL",
                transient=False,
            ) from None
        try:
            # pgdata itself too: pgserver creates it with exist_ok=False after checking that it
            # is missing, so two first runs at once could both see it missing and one fail
            # with "File exists". initdb accepts the empty folder; the rest pgserver locks.
            self.pgdata.mkdir(parents=True, exist_ok=True)
            # Another process (a running `finsent serve`) may have it up: then this attaches.
            running = (self.pgdata / "postmaster.pid").is_file()
            log.info(
                "%s embedded PostgreSQL in %s", "using the running" if running else "starting", self.pgdata
            )
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers): harmless.
                warnings.simplefilter("ignore")
                prune_dead_handles(self.pgdata, pgserver.postgres_server.PostgresServer._lock)
                self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
            self._ensure_database()
        except DatabaseError:
            raise
        except Exception as exc:
            raise DatabaseError(
                f"embedded PostgreSQL in {self.pgdata} failed to start ({first_line(exc)}); "
                f"see {self.pgdata / 'log'} or set FINSENT_DATABASE_URL",
                transient=False,
            ) from None
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise DatabaseError("embedded PostgreSQL is not started", transient=False)
        uri = self._server.get_uri(DATABASE_NAME)
        return uri.replace("postgresql://", "postgresql+psycopg2://", 1)

    def _ensure_database(self) -> None:
        import psycopg2
        import psycopg2.errors

        admin = self._server.get_uri("postgres")
        conn = psycopg2.connect(admin)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
                if cur.fetchone() is None:
                    try:
                        cur.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                    except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                        # Two first runs at once: the other process created it between the
                        # check and here; it is the database we wanted.
                        log.debug("database %s created by another process", DATABASE_NAME)
        finally:
            conn.close()

    def close(self) -> None:
        if self._server is not None:
            # Stops the server only when this is the last process using it; a holder that was
            # killed since we attached must not keep it running.
            prune_dead_handles(self.pgdata, type(self._server)._lock)
            self._server.cleanup()
            _forget_handle(self._server)
            self._server = None


def _forget_handle(server) -> None:
    """Drop a released pgserver handle from its per-process cache and from atexit.

    When another process still uses the server, pgserver keeps the released handle cached,
    and the next ``get_server`` in this process returned it without listing this process
    again: the other process detaching then stopped the server under us. Its atexit hook
    also ran the release a second time at exit, logging into closed streams.
    """
    import atexit

    cache = type(server)._instances
    if cache.get(server.pgdata) is server:
        del cache[server.pgdata]
    atexit.unregister(server._cleanup)


def prune_dead_handles(pgdata: Path, lock) -> list[int]:
    """Drop the pids of processes that are gone from pgserver's handle list; return them.

    pgserver removes a process's pid at exit, which a killed process never reaches: its pid
    stayed listed and the server was never stopped again. Under pgserver's own lock.
    """
    import psutil

    path = Path(pgdata).expanduser().resolve() / ".handle_pids.json"
    with lock:
        try:
            pids = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        dead = [pid for pid in pids if not _alive(psutil, pid)]
        if dead:
            path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
            log.info("embedded PostgreSQL: dropped handles of exited processes %s", dead)
    return dead


def _alive(psutil, pid: int) -> bool:
    try:
        # A killed child its parent has not reaped yet is a zombie: gone for our purpose.
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process (macOS): it exists
        return True


# The old private name, for code written before first_line became public in pipeline.errors.
_first_line = first_line
