"""A read-only PostgreSQL role for analysts and BI tools (``finsent db create-readonly-role``).

The role gets CONNECT on the database, USAGE on the schema, SELECT on every table and view in
it, and default privileges so tables and views created later by the role running this (the
one that runs migrations) are readable too. It gets no INSERT, UPDATE, DELETE, TRUNCATE, no
sequence use and no role attributes; its sessions also default to read-only transactions.
The grants are what protect the data; the read-only default only saves an analyst from a slip.

An existing role is checked first: a membership that grants writes (``pg_write_all_data``, the
tables' owner, any role that may write a table here) or an attribute that does (SUPERUSER,
CREATEROLE, ...) is refused, or stripped with ``force``. Before committing, the result is proven
by trying writes as the role in a subtransaction that is rolled back.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from pipeline.db.engine import Database
from pipeline.errors import DatabaseError, FinSentError, first_line

__all__ = ["RoleError", "RoleReport", "check_role_name", "create_readonly_role"]

log = logging.getLogger(__name__)

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RESERVED = {"postgres", "public", "current_user", "session_user", "current_role", "none"}


class RoleError(FinSentError):
    """The role cannot be created as asked (bad name, or it would weaken an existing role)."""

    stage = "database"


@dataclass
class RoleReport:
    name: str
    created: bool
    database: str
    schema: str
    relations: int
    password_set: bool
    warnings: list[str] = field(default_factory=list)
    #: Attributes (NO...) and memberships taken away from an existing role (``force``).
    revoked: list[str] = field(default_factory=list)

    def render(self) -> str:
        verb = "created" if self.created else "updated"
        lines = [
            f"read-only role {self.name} {verb}: SELECT on {self.relations} tables and views in "
            f"{self.database}.{self.schema}, and on those created later by the migrating role",
            "password: "
            + (
                "set"
                if self.password_set
                else "none (use --password-env for TCP logins)"
                if self.created
                else "unchanged (--password-env sets a new one)"
            ),
        ]
        if self.revoked:
            lines.append("revoked: " + ", ".join(self.revoked))
        lines.append("checked: writes as the role are refused (tried, then rolled back)")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_role_name(name: str) -> str:
    if not _ROLE.match(name) or name in _RESERVED or name.startswith("pg_"):
        raise RoleError(
            f"role name {name!r} is not allowed: use lower-case letters, digits and _ "
            "(not starting with pg_), e.g. finsent_reader"
        )
    return name


#: Role attributes that let a role write or escape, and the clause that strips each.
_ATTRIBUTES = {
    "rolsuper": "NOSUPERUSER",
    "rolcreaterole": "NOCREATEROLE",
    "rolcreatedb": "NOCREATEDB",
    "rolreplication": "NOREPLICATION",
    "rolbypassrls": "NOBYPASSRLS",
}
#: Predefined roles a reader may keep: they read, nothing more.
_READING_ROLES = (
    "pg_read_all_data",
    "pg_read_all_settings",
    "pg_read_all_stats",
    "pg_monitor",
    "pg_stat_scan_tables",
)
_WRITE_PRIVILEGES = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
_INSUFFICIENT_PRIVILEGE = "42501"


def create_readonly_role(
    db: Database, name: str, *, password: str | None = None, force: bool = False
) -> RoleReport:
    """Create (or bring back in line) the read-only role ``name``; idempotent.

    An existing role that can write through a membership or an attribute is refused with a
    :class:`RoleError` naming them, unless ``force``: then they are revoked. Nothing is
    committed unless writes as the role are refused afterwards.
    """
    check_role_name(name)
    role = f'"{name}"'  # safe: the name matched _ROLE
    with db.engine.begin() as conn:
        database, schema, me = conn.execute(
            text("SELECT quote_ident(current_database()), quote_ident(current_schema()), current_user")
        ).one()
        existing = (
            conn.execute(
                text(f"SELECT {', '.join(_ATTRIBUTES)} FROM pg_roles WHERE rolname = :n"), {"n": name}
            )
            .mappings()
            .first()
        )
        if name == me:
            raise RoleError(f"role {name} is the role FinSent connects as: choose another name")
        if existing is not None and _owns_objects(conn, name):
            raise RoleError(f"role {name} already exists and owns objects: choose another name")
        i_am_superuser = _is_superuser(conn, me)
        if not i_am_superuser and not _may_create_roles(conn, me):
            raise DatabaseError(
                f"role {me} may not create roles: run this as a superuser or a role with CREATEROLE",
                transient=False,
            )
        strip = [clause for attr, clause in _ATTRIBUTES.items() if existing and existing[attr]]
        memberships = _writing_memberships(conn, name) if existing is not None else []
        if (strip or memberships) and not force:
            raise RoleError(
                f"role {name} already exists and can write or administer ({_describe(strip, memberships)}): "
                "rerun with --force to revoke them, or choose another name"
            )
        if not i_am_superuser and any(c in strip for c in ("NOSUPERUSER", "NOREPLICATION", "NOBYPASSRLS")):
            raise RoleError(
                f"role {name} has SUPERUSER, REPLICATION or BYPASSRLS, which only a superuser may "
                f"revoke: run this as a superuser, or have one run ALTER ROLE {name} "
                "NOSUPERUSER NOREPLICATION NOBYPASSRLS first"
            )

        if existing is None:
            attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
            conn.execute(text(f"CREATE ROLE {role} {attrs}"))
        else:
            # Only the clauses that change something: on PostgreSQL 15 naming NOSUPERUSER at all
            # needs a superuser, which a CREATEROLE role re-running this is not.
            conn.execute(text(f"ALTER ROLE {role} {' '.join(['LOGIN', 'INHERIT', *strip])}"))
            for granted in memberships:
                conn.execute(text(f'REVOKE "{granted}" FROM {role}'))
        if password is not None:
            conn.execute(text(f"ALTER ROLE {role} PASSWORD :pw"), {"pw": _encrypt(conn, password, name)})
        statements = [
            f"ALTER ROLE {role} SET default_transaction_read_only = on",
            f"GRANT CONNECT ON DATABASE {database} TO {role}",
            f"GRANT USAGE ON SCHEMA {schema} TO {role}",
            # Bring a pre-existing role back to exactly SELECT.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
        ]
        for statement in statements:
            try:
                conn.execute(text(statement))
            except DBAPIError as exc:
                if getattr(exc.orig, "pgcode", None) != _INSUFFICIENT_PRIVILEGE:
                    raise
                raise RoleError(
                    f"role {me} may not do what this needs ({first_line(exc.orig)}): run it as a "
                    f"superuser, or as a CREATEROLE role that owns database {database} and FinSent's "
                    "tables (the role that runs `finsent db upgrade`)"
                ) from None
        owner_warnings = _grant_future_reads(conn, role, schema, i_am_superuser=i_am_superuser)
        relations = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p')"
            )
        ).scalar_one()
        unreadable = _reads_missing(conn, name)
        if unreadable:  # a GRANT that is not ours to give only warns: checked here
            raise RoleError(
                f"role {name} could not be given read access ({', '.join(unreadable)}): run this as "
                f"a superuser, or as the role that owns database {database} and FinSent's tables"
            )
        writes = _writes_allowed(conn, name, schema, me)
        if writes:  # raising rolls back everything above
            raise RoleError(
                f"role {name} could still write after the grants ({'; '.join(writes)}): nothing was "
                "changed; revoke what grants it (see \\du and \\dp in psql) and run this again"
            )
        warnings = owner_warnings + _weak_spots(conn, name)
    report = RoleReport(
        name=name,
        created=existing is None,
        database=database,
        schema=schema,
        relations=relations,
        password_set=password is not None,
        warnings=warnings,
        revoked=[*strip, *memberships],
    )
    log.info("read-only role %s %s", name, "created" if report.created else "updated")
    return report


def _grant_future_reads(conn: Connection, role: str, schema: str, *, i_am_superuser: bool) -> list[str]:
    """Default privileges for the roles that own this schema's tables, besides ours.

    ``ALTER DEFAULT PRIVILEGES`` without ``FOR ROLE`` covers only what the role running this
    creates. Run by a superuser while another role owns the tables and runs the migrations,
    the views a later migration adds would be unreadable; so the owners get the same default.
    Returns a warning for each owner that this role may not speak for."""
    owners = conn.execute(
        text(
            "SELECT DISTINCT r.rolname, quote_ident(r.rolname), "
            "pg_has_role(current_user, r.oid, 'MEMBER') "
            "FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
            "JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p') "
            "AND r.rolname <> current_user ORDER BY 1"
        )
    ).all()
    warnings = []
    for owner, quoted, member in owners:
        if i_am_superuser or member:
            grant = f"GRANT SELECT ON TABLES TO {role}"
            conn.execute(text(f"ALTER DEFAULT PRIVILEGES FOR ROLE {quoted} IN SCHEMA {schema} {grant}"))
        else:
            warnings.append(
                f"tables and views that {owner} creates later (a `finsent db upgrade` run as {owner}) "
                f"will not be readable: run this command as {owner}, or again after each upgrade"
            )
    return warnings


def _describe(strip: list[str], memberships: list[str]) -> str:
    parts = []
    if memberships:
        parts.append("member of " + ", ".join(memberships))
    if strip:
        parts.append("attributes " + ", ".join(c.removeprefix("NO") for c in strip))
    return "; ".join(parts)


def _writing_memberships(conn: Connection, name: str) -> list[str]:
    """Roles ``name`` is directly a member of that grant more than reading: predefined roles
    other than the reading ones, and any role that (itself or through its own memberships)
    owns or may write a table in this schema, may create in it, or has an admin attribute."""
    return list(
        conn.execute(
            text(
                """
                SELECT g.rolname
                FROM pg_auth_members m
                JOIN pg_roles r ON r.oid = m.member
                JOIN pg_roles g ON g.oid = m.roleid
                WHERE r.rolname = :n AND (
                    (g.rolname LIKE 'pg\\_%' AND g.rolname <> ALL(:reading))
                    OR g.rolsuper OR g.rolcreaterole OR g.rolcreatedb OR g.rolreplication
                    OR g.rolbypassrls
                    OR pg_has_role(g.oid, 'pg_write_all_data', 'MEMBER')
                    OR has_schema_privilege(g.oid, current_schema(), 'CREATE')
                    OR EXISTS (
                        SELECT 1 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                        WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
                          AND (pg_has_role(g.oid, c.relowner, 'MEMBER')
                               OR (c.relkind <> 'S' AND has_table_privilege(g.oid, c.oid, :write)))
                    )
                )
                ORDER BY g.rolname
                """
            ),
            {"n": name, "reading": list(_READING_ROLES), "write": _WRITE_PRIVILEGES},
        ).scalars()
    )


#: Writes tried as the role; each must fail with insufficient_privilege. WHERE false: the
#: privilege is checked all the same, and no row, lock or sequence value is touched.
_PROBES = (
    "INSERT INTO {s}.feeds (url) SELECT 'finsent-readonly-probe' WHERE false",
    "UPDATE {s}.articles SET title = title WHERE false",
    "DELETE FROM {s}.alert_deliveries WHERE false",
    "CREATE TABLE {s}.finsent_readonly_probe (x int)",
)


def _writes_allowed(conn: Connection, name: str, schema: str, me: str) -> list[str]:
    """What ``name`` may still write: the catalog's answer for every table, then real writes
    tried as the role, all inside a subtransaction that is rolled back."""
    found = list(
        conn.execute(
            text(
                "SELECT 'may write ' || c.relname FROM pg_class c "
                "JOIN pg_namespace s ON s.oid = c.relnamespace "
                "WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                "AND (has_table_privilege(:n, c.oid, :write) OR pg_has_role(:n, c.relowner, 'MEMBER')) "
                "ORDER BY c.relname LIMIT 5"
            ),
            {"n": name, "write": _WRITE_PRIVILEGES},
        ).scalars()
    )
    role = f'"{name}"'
    outer = conn.begin_nested()
    try:
        if (
            not _is_superuser(conn, me)
            and not conn.execute(
                text("SELECT pg_has_role(current_user, :n, 'MEMBER')"), {"n": name}
            ).scalar_one()
        ):
            # A CREATEROLE role (PostgreSQL 15) may grant itself the role it manages: for
            # SET ROLE only, undone with the subtransaction.
            conn.execute(text(f"GRANT {role} TO CURRENT_USER"))
        conn.execute(text(f"SET LOCAL ROLE {role}"))
        for probe in _PROBES:
            statement = probe.format(s=schema)
            attempt = conn.begin_nested()
            try:
                conn.execute(text(statement))
            except DBAPIError as exc:
                attempt.rollback()
                if getattr(exc.orig, "pgcode", None) != _INSUFFICIENT_PRIVILEGE:
                    found.append(f"{statement.split(' WHERE')[0]} failed otherwise: {exc.orig}")
            else:
                attempt.rollback()
                found.append(f"wrote: {statement.split(' SELECT')[0].split(' WHERE')[0]}")
    finally:
        outer.rollback()  # SET LOCAL ROLE and the temporary membership go with it
    return found


def _reads_missing(conn: Connection, name: str) -> list[str]:
    """What ``name`` cannot read although it should: the database, the schema, a relation."""
    return list(
        conn.execute(
            text(
                "SELECT 'CONNECT on the database' WHERE NOT has_database_privilege(:n, current_database(), "
                "'CONNECT') UNION ALL SELECT 'USAGE on the schema' WHERE NOT has_schema_privilege(:n, "
                "current_schema(), 'USAGE') UNION ALL (SELECT 'SELECT on ' || c.relname FROM pg_class c "
                "JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = current_schema() "
                "AND c.relkind IN ('r', 'v', 'm', 'p') AND NOT has_table_privilege(:n, c.oid, 'SELECT') "
                "ORDER BY c.relname LIMIT 5)"
            ),
            {"n": name},
        ).scalars()
    )


def _is_superuser(conn: Connection, who: str) -> bool:
    return bool(
        conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :n"), {"n": who}).scalar_one()
    )


def _owns_objects(conn: Connection, name: str) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = :n)"
            ),
            {"n": name},
        ).scalar_one()
    )


def _may_create_roles(conn: Connection, me: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = :n"), {"n": me}
        ).scalar_one()
    )


def _encrypt(conn: Connection, password: str, name: str) -> str:
    """Hash the password client-side (the server's method), so it never travels in clear."""
    from psycopg2.extensions import encrypt_password

    raw = conn.connection.dbapi_connection
    return encrypt_password(password, name, raw, None)


def _weak_spots(conn: Connection, name: str) -> list[str]:
    """Privileges the role inherits from PUBLIC that a read-only role should not have."""
    warnings = []
    schema_create, db_create = conn.execute(
        text(
            "SELECT has_schema_privilege(:n, current_schema(), 'CREATE'), "
            "has_database_privilege(:n, current_database(), 'CREATE')"
        ),
        {"n": name},
    ).one()
    if schema_create:
        warnings.append(
            "PUBLIC may create tables in this schema (PostgreSQL < 15 default): "
            "run REVOKE CREATE ON SCHEMA public FROM PUBLIC"
        )
    if db_create:
        warnings.append(
            "PUBLIC may create schemas in this database: run REVOKE CREATE ON DATABASE ... FROM PUBLIC"
        )
    return warnings
