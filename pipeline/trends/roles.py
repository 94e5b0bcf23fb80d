"""A read-only PostgreSQL role for analysts and BI tools (``finsent db create-readonly-role``).

The role gets CONNECT on the database, USAGE on the schema, SELECT on every table and view in
it, and default privileges so tables and views created later by the role running this (the
one that runs migrations) are readable too. It gets no INSERT, UPDATE, DELETE, TRUNCATE, no
sequence use and no role attributes; its sessions also default to read-only transactions.
The grants are what protect the data; the read-only default only saves an analyst from a slip.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from pipeline.db.engine import Database
from pipeline.errors import DatabaseError, FinSentError

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

    def render(self) -> str:
        verb = "created" if self.created else "updated"
        lines = [
            f"read-only role {self.name} {verb}: SELECT on {self.relations} tables and views in "
            f"{self.database}.{self.schema}, and on those created later by the migrating role",
            "password: " + ("set" if self.password_set else "none (use --password-env for TCP logins)"),
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_role_name(name: str) -> str:
    if not _ROLE.match(name) or name in _RESERVED or name.startswith("pg_"):
        raise RoleError(
            f"role name {name!r} is not allowed: use lower-case letters, digits and _ "
            "(not starting with pg_), e.g. finsent_reader"
        )
    return name


def create_readonly_role(db: Database, name: str, *, password: str | None = None) -> RoleReport:
    """Create (or bring back in line) the read-only role ``name``; idempotent."""
    check_role_name(name)
    role = f'"{name}"'  # safe: the name matched _ROLE
    with db.engine.begin() as conn:
        database, schema, me = conn.execute(
            text("SELECT quote_ident(current_database()), quote_ident(current_schema()), current_user")
        ).one()
        existing = conn.execute(
            text(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "
                "FROM pg_roles WHERE rolname = :n"
            ),
            {"n": name},
        ).first()
        if name == me:
            raise RoleError(f"role {name} is the role FinSent connects as: choose another name")
        if existing is not None and existing[0]:
            raise RoleError(
                f"role {name} already exists with administrative attributes: "
                "choose another name, or drop that role first"
            )
        if existing is not None and _owns_objects(conn, name):
            raise RoleError(f"role {name} already exists and owns objects: choose another name")
        if not _may_create_roles(conn, me):
            raise DatabaseError(
                f"role {me} may not create roles: run this as a superuser or a role with CREATEROLE",
                transient=False,
            )

        attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
        conn.execute(text(f"{'ALTER' if existing else 'CREATE'} ROLE {role} {attrs}"))
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
            conn.execute(text(statement))
        relations = conn.execute(
            text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p')"
            )
        ).scalar_one()
        warnings = _weak_spots(conn, name)
    report = RoleReport(
        name=name,
        created=existing is None,
        database=database,
        schema=schema,
        relations=relations,
        password_set=password is not None,
        warnings=warnings,
    )
    log.info("read-only role %s %s", name, "created" if report.created else "updated")
    return report


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
