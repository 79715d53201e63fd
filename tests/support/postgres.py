"""A real Postgres for the tests: ABSURD_TEST_DSN, else testcontainers if Docker answers, else pgserver.

Each test gets a fresh database cloned from a migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import make_conninfo

from absurd.migrate import migrate

TEMPLATE = "absurd_template"


@dataclass
class ServerUnderTest:
    """A server the tests may use; ``restart`` is None when the tests cannot restart it."""

    admin_dsn: str
    kind: str
    restart: Callable[[], None] | None
    drop_connections: Callable[[], None]

    def dsn_for(self, dbname: str) -> str:
        """The DSN of database ``dbname`` on this server."""
        return make_conninfo(self.admin_dsn, dbname=dbname)


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _terminate_all(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )


@contextlib.contextmanager
def session_server() -> Iterator[ServerUnderTest]:
    """Yield the server for this test session, cleaning up what we started."""
    external = os.environ.get("ABSURD_TEST_DSN")
    if external:
        yield ServerUnderTest(external, "external", None, lambda: _terminate_all(external))
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as container:
            dsn = container.get_connection_url()
            wrapped = container.get_wrapped_container()

            def restart_container() -> None:
                wrapped.restart()

            yield ServerUnderTest(dsn, "container", restart_container, lambda: _terminate_all(dsn))
        return
    import pgserver
    from pgserver._commands import pg_ctl

    data_dir = tempfile.mkdtemp(prefix="absurd-test-pg-")
    server = pgserver.get_server(data_dir, cleanup_mode="delete")
    dsn = server.get_uri()

    def restart_embedded() -> None:
        # pg_ctl restart reuses the options the server was started with (socket dir, no TCP).
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)

    try:
        yield ServerUnderTest(dsn, "embedded", restart_embedded, lambda: _terminate_all(dsn))
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def make_template(server: ServerUnderTest) -> None:
    """(Re)create the migrated template database."""
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with psycopg.connect(server.dsn_for(TEMPLATE), autocommit=True) as conn:
        migrate(conn)


@contextlib.contextmanager
def fresh_database(server: ServerUnderTest) -> Iterator[str]:
    """A new database cloned from the template; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield server.dsn_for(name)
    finally:
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
