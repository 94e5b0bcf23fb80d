"""Throw-away databases on a PostgreSQL server, for fixtures (ours and Airflow's metadata)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text


def _admin(server_url: str):
    return create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )


def create_database(server_url: str, prefix: str = "finsent_test") -> tuple[str, str]:
    """A fresh database on the server; returns (psycopg2 URL, name)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _admin(server_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(drivername="postgresql+psycopg2", database=name)
    return url.render_as_string(hide_password=False), name


def drop_database(server_url: str, name: str) -> None:
    admin = _admin(server_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def throwaway_database(server_url: str, prefix: str = "finsent_test") -> Iterator[str]:
    """A fresh database for the ``with`` block (its psycopg2 URL), dropped afterwards."""
    url, name = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop_database(server_url, name)
