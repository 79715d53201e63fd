"""docs/schema.sql is the schema the migrations make, regenerated from a freshly migrated database."""

from __future__ import annotations

import difflib

import psycopg
import pytest

from absurd.schema_dump import COMMAND, SCHEMA_FILE, dump_schema, pg_dump_major


def test_docs_schema_sql_matches_the_migrations(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        server_major = conn.info.server_version // 10000
    if server_major != pg_dump_major():
        pytest.skip(f"pg_dump {pg_dump_major()} prints a PostgreSQL {server_major} server differently")
    current = dump_schema(dsn)
    written = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
    if written != current:
        diff = list(difflib.unified_diff(written.splitlines(), current.splitlines(), "docs", "migrations"))
        shown = "\n".join(diff[:40])
        pytest.fail(f"docs/schema.sql is stale: run {COMMAND}\n{shown}", pytrace=False)
