"""The server a benchmark runs on, and the scratch database it uses there.

Without a DSN a fresh embedded Postgres (pgserver) is started in a temporary directory, so a run never
touches the user's data. Durability settings are left as the server has them and reported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from absurd.database import DSN_ENV
from absurd.migrate import migrate


@contextmanager
def embedded_server() -> Iterator[Any]:
    """A fresh embedded Postgres (pgserver) in a temporary directory, removed afterwards. The server
    object has ``get_uri()``, ``pgdata`` and ``log`` (the server's log file)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
        import pgserver

        data_dir = tempfile.mkdtemp(prefix="absurd-bench-pg-")
        server = pgserver.get_server(data_dir, cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def admin_dsn(dsn: str | None) -> Iterator[tuple[str, str]]:
    """Yield (DSN of a server we may create databases on, where it came from)."""
    given = dsn or os.environ.get(DSN_ENV)
    if given:
        yield given, "--dsn" if dsn else DSN_ENV
        return
    with embedded_server() as server:
        yield str(server.get_uri()), f"embedded pgserver in {server.pgdata}"


@contextmanager
def scratch_database(admin: str) -> Iterator[str]:
    """Create and migrate ``bench_<hex>``, yield its DSN, drop it afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # name is ours, never user input
    dsn = make_conninfo(admin, dbname=name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def server_facts(conn: psycopg.Connection) -> dict[str, str]:
    """The settings that decide commit cost, as the server reports them."""
    facts = {}
    for setting in ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"):
        row = conn.execute(f"SHOW {setting}").fetchone()  # fixed names from the tuple above
        facts[setting] = str(row[0]) if row else "?"
    return facts


def count(conn: psycopg.Connection, sql: str, params: tuple[object, ...] = ()) -> int:
    """The single integer a ``SELECT count(*) ...`` returns (0 for no row)."""
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def truth(conn: psycopg.Connection, sql: str) -> bool:
    """The single boolean a ``SELECT EXISTS ...`` returns."""
    row = conn.execute(sql).fetchone()
    return bool(row and row[0])


def epoch(conn: psycopg.Connection) -> float:
    """The server's clock (``clock_timestamp()``) as a Unix epoch."""
    row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    assert row is not None
    return float(row[0])
