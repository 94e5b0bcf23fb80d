"""Engines and sessions, built on demand from the settings (never at import)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.embedded import EmbeddedPostgres
from pipeline.errors import ConfigError, DatabaseError, first_line
from pipeline.masking import mask_url
from pipeline.settings import Settings, default_data_dir

log = logging.getLogger(__name__)


@dataclass
class Database:
    """An open database: an engine, a session factory and, if embedded, its server."""

    engine: Engine
    display_url: str
    embedded: EmbeddedPostgres | None = None
    _sessions: sessionmaker[Session] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
        if self.embedded is not None:
            self.embedded.close()
            self.embedded = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use the psycopg2 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: object) -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except (ArgumentError, ValueError):
        parsed, backend = None, None
    if parsed is not None and "@" in (parsed.host or ""):
        # user:p@ss@host: the driver takes "ss@host" for the host and names it in its error,
        # half of the password with it.
        raise ConfigError(
            f"database URL {mask_url(url)} has an '@' in its password: write it as %40 in the URL"
        )
    if backend is not None and backend != "postgresql":
        raise ConfigError(
            f"database URL {mask_url(url)} is not PostgreSQL: FinSent stores only in PostgreSQL"
        )
    try:
        engine = create_engine(url, pool_pre_ping=True, future=True, **kwargs)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"database URL {mask_url(url)} is not usable ({first_line(exc)}): "
            "use postgresql+psycopg2://user:password@host:5432/dbname"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigError(f"database URL {mask_url(url)} needs a missing driver ({exc.name})") from None
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            f"database URL {mask_url(url)} is not PostgreSQL: FinSent stores only in PostgreSQL"
        )
    return engine


def open_database(settings: Settings, *, check_schema: bool = True, migrate: bool = False) -> Database:
    """Connect to FINSENT_DATABASE_URL, or start the embedded server when it is unset.

    ``migrate`` upgrades the schema to the code's revision first; ``check_schema`` refuses
    a database whose schema is behind or ahead of the code (SchemaError, one line).
    """
    embedded = None
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        data_dir = settings.data_dir
        explicit = data_dir != default_data_dir()  # the default is created whole, parents too
        if explicit and not data_dir.exists() and not data_dir.parent.exists():
            # A typo in --data-dir would otherwise start a new, empty 45 MB database there.
            raise ConfigError(
                f"data dir {data_dir} does not exist and neither does {data_dir.parent}: check the "
                "path (--data-dir or FINSENT_DATA_DIR), or create its parent first"
            )
        if any(ch.isspace() for ch in str(data_dir.resolve())):
            # pgserver passes the socket folder to postgres unquoted: it fails to start there.
            raise ConfigError(
                f"data dir {data_dir}: the embedded PostgreSQL cannot run in a path with spaces; "
                "choose another (--data-dir or FINSENT_DATA_DIR), or set FINSENT_DATABASE_URL"
            )
        embedded = EmbeddedPostgres(settings.embedded_pgdata)
        url = embedded.start()
    display = mask_url(normalise_url(url))
    try:
        engine = make_engine(url)
        db = Database(engine=engine, display_url=display, embedded=embedded)
    except Exception:
        if embedded is not None:
            embedded.close()
        raise
    try:
        ping(db)
        if migrate:
            from pipeline.db.migrate import upgrade

            upgrade(db.engine)
        if check_schema:
            from pipeline.db.migrate import check_schema as _check

            _check(db.engine)
    except BaseException:
        db.close()
        raise
    return db


#: SQLSTATEs of a login the server refuses until someone changes the settings: wrong
#: password (28P01), no such role or not allowed in (28000), no such database (3D000).
_LOGIN_REFUSED_CODES = frozenset({"28P01", "28000", "3D000"})
#: libpq's wording of the same refusals: at connect time psycopg2 often gives no pgcode.
_LOGIN_REFUSED = re.compile(
    r'password authentication failed|authentication failed for user|role "[^"]*" does not exist'
    r'|database "[^"]*" does not exist|no pg_hba\.conf entry|is not permitted to log in'
    r"|permission denied for database"
)
#: The same refusal (28P01) from an authentication server PostgreSQL asks (LDAP, RADIUS,
#: PAM): that server being down or slow reads alike, and a retry may well succeed.
_EXTERNAL_AUTH = re.compile(r"\b(?:LDAP|RADIUS|PAM) authentication failed")


def login_refused(orig: BaseException | None) -> bool:
    """Whether a driver error is the server refusing this role, password or database: a
    retry gets the same answer (unlike a refused connection, a timeout or a shutdown)."""
    if orig is None or _EXTERNAL_AUTH.search(str(orig)):
        return False
    if getattr(orig, "pgcode", None) in _LOGIN_REFUSED_CODES:
        return True
    return _LOGIN_REFUSED.search(str(orig)) is not None


def ping(db: Database) -> None:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        if login_refused(exc.orig):
            # Not transient: Airflow would retry it for an hour and page no one meanwhile.
            raise ConfigError(
                f"cannot connect to {db.display_url}: the server refused the login "
                f"({first_line(exc.orig or exc)}): fix the role, password or database name in "
                "FINSENT_DATABASE_URL or the Airflow connection finsent_postgres",
                stage="database",
            ) from None
        raise DatabaseError(
            f"cannot connect to {db.display_url} ({first_line(exc.orig or exc)}): "
            "start PostgreSQL or fix FINSENT_DATABASE_URL"
        ) from None
