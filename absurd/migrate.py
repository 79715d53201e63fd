"""Apply the numbered SQL files of ``migrations/`` in order, each in its own transaction.

Each applied file is recorded with a SHA-256 checksum; a file edited after it was applied is
refused. Concurrent callers serialise on an advisory lock, so two processes starting together
apply each migration once. A database built by the chain that the baseline replaced is refused
with a message that says to recreate it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog

from absurd.database import embedded_data_dir
from absurd.errors import MigrationError

log = structlog.get_logger(__name__)

_LOCK_KEY = 0x0AB5_0D01
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# The files of the migration chain that the baseline folded into one. A database that records one of them
# (and no file of that name is shipped now) was built by that chain, and no migration leads from it to
# the baseline.
PRE_BASELINE = frozenset(
    {
        "0001_queue.sql",
        "0002_products.sql",
        "0003_workflows_dlq_gates.sql",
        "0004_schedules.sql",
        "0005_lightcurves.sql",
        "0006_stream.sql",
        "0007_real_data.sql",
        "0008_queue_fixes.sql",
        "0009_least_privilege.sql",
        "0010_lease_expiries.sql",
        "0011_checkpoint_fencing.sql",
        "0012_breaker_trials.sql",
    }
)


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    """The directory of migration files: inside the installed package, else the source tree's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_migrations", here.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError(f"no migrations directory found next to {here}")


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read and order the migration files; reject misnamed files and duplicate numbers."""
    directory = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files must be named NNNN_snake_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} is also used by {found[version].name}")
        found[version] = Migration(version, path.name, path.read_text())
    return [found[v] for v in sorted(found)]


def applied_versions(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    """Applied migrations as {version: (name, checksum)}; empty on a fresh database."""
    exists = conn.execute("SELECT to_regclass('public.absurd_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM public.absurd_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def migrate(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Apply every pending migration; return the names applied. ``conn`` must be autocommit."""
    migrations = load_migrations(directory)
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS public.absurd_migrations (
                   version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = applied_versions(conn)
        _refuse_pre_baseline(conn, done, migrations)
        for migration in migrations:
            if migration.version in done:
                _, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} was applied with checksum {checksum[:12]} but the "
                        f"file now has {migration.checksum[:12]}: applied migrations must not be edited; "
                        "add a new numbered migration instead"
                    )
        applied: list[str] = []
        for migration in migrations:
            if migration.version in done:
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO public.absurd_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.name} failed and was rolled back: {exc}") from exc
            log.info("migration applied", migration=migration.name)
            applied.append(migration.name)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _refuse_pre_baseline(
    conn: psycopg.Connection, done: dict[int, tuple[str, str]], migrations: list[Migration]
) -> None:
    shipped = {m.name for m in migrations}
    old = sorted(name for name, _ in done.values() if name in PRE_BASELINE and name not in shipped)
    if old:
        database = conn.info.dbname
        raise MigrationError(
            f"database {database!r} was created by the pre-baseline migration chain (it records {old[0]}, "
            "which the baseline migrations replaced) and cannot be migrated: recreate it "
            f'(DROP DATABASE "{database}", create it again and migrate; for the embedded database, stop '
            f"its server and remove its data directory {embedded_data_dir()})"
        )


def pending(conn: psycopg.Connection, directory: Path | None = None) -> list[str]:
    """Names of migrations not yet applied."""
    done = applied_versions(conn)
    return [m.name for m in load_migrations(directory) if m.version not in done]
