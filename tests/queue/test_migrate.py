"""Migrations: ordered, recorded with checksums, serialised across processes, edits refused, and a database
of the chain the baseline replaced refused with what to do."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from absurd.errors import MigrationError
from absurd.migrate import applied_versions, load_migrations, migrate, pending
from tests.support.postgres import ServerUnderTest


@pytest.fixture
def empty_dsn(pg_server: ServerUnderTest):
    import uuid

    name = f"e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


def test_shipped_migrations_apply_and_are_recorded(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        applied = migrate(conn)
        assert applied == [m.name for m in load_migrations()]
        assert migrate(conn) == []
        assert pending(conn) == []
        recorded = applied_versions(conn)
    assert {v: n for v, (n, _) in recorded.items()} == {m.version: m.name for m in load_migrations()}


def test_edited_migration_is_refused(empty_dsn: str, tmp_path: Path) -> None:
    _write(tmp_path, "0001_first.sql", "CREATE TABLE first_table (id int);")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        migrate(conn, tmp_path)
        _write(tmp_path, "0001_first.sql", "CREATE TABLE first_table (id bigint);")
        with pytest.raises(MigrationError, match=r"0001_first\.sql was applied with checksum"):
            migrate(conn, tmp_path)


def test_database_of_the_pre_baseline_chain_is_refused_with_how_to_recreate_it(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE absurd_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO absurd_migrations (version, name, checksum) VALUES "
            "(1, '0001_queue.sql', 'old'), (2, '0002_products.sql', 'old'), "
            "(3, '0003_workflows_dlq_gates.sql', 'old')"
        )
        with pytest.raises(MigrationError) as raised:
            migrate(conn)
        database = conn.info.dbname
    message = str(raised.value)
    assert "\n" not in message
    assert f"database '{database}' was created by the pre-baseline migration chain" in message
    assert f'DROP DATABASE "{database}"' in message and "remove its data directory" in message
    assert "checksum" not in message


def test_failing_migration_rolls_back_and_names_itself(empty_dsn: str, tmp_path: Path) -> None:
    _write(tmp_path, "0001_ok.sql", "CREATE TABLE ok_table (id int);")
    _write(tmp_path, "0002_broken.sql", "CREATE TABLE half (id int); SELECT no_such_function();")
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"0002_broken\.sql failed"):
            migrate(conn, tmp_path)
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert list(applied_versions(conn)) == [1]


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "1_bad.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_snake_name\.sql"):
        load_migrations(tmp_path)


def test_concurrent_migrators_apply_each_migration_once(empty_dsn: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            with psycopg.connect(empty_dsn, autocommit=True) as conn:
                barrier.wait()
                results.append(migrate(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    applied = [names for names in results if names]
    assert len(applied) == 1 and applied[0] == [m.name for m in load_migrations()]
