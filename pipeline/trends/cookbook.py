"""Read ``sql/cookbook.sql`` and run its queries from Python (tests, the benchmark, notebooks).

The file is written for psql: each query starts at a ``-- name: NAME`` line and takes psql
variables written ``:'param'``. Here each ``:'param'`` becomes a bound parameter, so values are
passed safely and typed by the casts the queries already carry, and each query runs in UTC as
it does in psql.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, TextClause, text

from pipeline.errors import FinSentError
from pipeline.paths import REPO_ROOT

COOKBOOK_PATH = REPO_ROOT / "sql" / "cookbook.sql"

_NAME = re.compile(r"^-- name: ([a-z0-9_]+)\s*$", re.MULTILINE)
_PARAM = re.compile(r":'([a-z_][a-z0-9_]*)'")


@dataclass(frozen=True)
class CookbookQuery:
    name: str
    description: str
    sql: str  # psql text, as in the file
    params: tuple[str, ...]

    def statement(self) -> TextClause:
        # The parentheses keep psql's `:'now'::timestamptz` casts valid after the swap.
        return text(_PARAM.sub(r"(:\1)", self.sql.rstrip().rstrip(";")))

    def run(self, conn: Connection, **params: Any) -> list[dict[str, Any]]:
        missing = sorted(set(self.params) - set(params))
        if missing:
            raise FinSentError(
                f"cookbook query {self.name} needs {', '.join(missing)}: pass them as parameters",
                stage="trends",
            )
        used = {k: v for k, v in params.items() if k in self.params}
        # The file runs in UTC (its SET timezone precedes the first query): a bare date such
        # as since=2026-11-13 is that UTC day here too, whatever zone the caller's session is
        # in (a server set up in local time). The caller's zone is put back afterwards; after a
        # failure the transaction is aborted, and its rollback undoes the local setting.
        zone = conn.execute(text("SELECT current_setting('TimeZone')")).scalar_one()
        conn.execute(text("SELECT set_config('TimeZone', 'UTC', true)"))
        rows = [dict(row) for row in conn.execute(self.statement(), used).mappings()]
        conn.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": zone})
        return rows


def load_cookbook(path: Path = COOKBOOK_PATH) -> dict[str, CookbookQuery]:
    """The cookbook's queries by name, in file order."""
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FinSentError(
            f"cookbook {path} not found: it ships in the repository's sql/ folder", stage="trends"
        ) from None
    marks = list(_NAME.finditer(source))
    queries: dict[str, CookbookQuery] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(source)
        body = source[mark.end() : end].strip("\n")
        lines = body.splitlines()
        comments = []
        while lines and lines[0].startswith("--"):
            comments.append(lines.pop(0)[2:].strip())
        sql = "\n".join(lines).strip()
        name = mark.group(1)
        if name in queries:
            raise FinSentError(f"cookbook {path}: query {name} is defined twice", stage="trends")
        queries[name] = CookbookQuery(
            name=name,
            description=" ".join(comments),
            sql=sql,
            params=tuple(dict.fromkeys(_PARAM.findall(sql))),
        )
    return queries
