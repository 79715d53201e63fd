"""Write ``docs/schema.sql``: the schema after every migration, as pg_dump prints it.

``python -m absurd.schema_dump`` (or ``make schema``) migrates a new database on a temporary embedded
Postgres and dumps it with that Postgres's own pg_dump, so the output does not depend on the machine;
``tests/queue/test_schema.py`` fails when the file no longer matches the migrations.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pgserver
import psycopg
from psycopg.conninfo import make_conninfo

from absurd.database import redact
from absurd.migrate import migrate

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "schema.sql"
PG_DUMP = Path(pgserver.__file__).resolve().parent / "pginstall" / "bin" / "pg_dump"
COMMAND = "make schema"
HEADER = f"-- Generated from migrations/ by `{COMMAND}` (python -m absurd.schema_dump); do not edit.\n"

# Lines that change with the machine or the pg_dump version, not with the schema.
_NOISE = re.compile(r"^(SET |SELECT pg_catalog\.set_config|-- Dumped (from|by)|\\(un)?restrict )")


def pg_dump_major() -> int:
    """The major version of the pg_dump used here."""
    out = subprocess.run([str(PG_DUMP), "--version"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"(\d+)\.", out)
    if not match:
        raise RuntimeError(f"cannot read the version of {PG_DUMP}: {out!r}")
    return int(match.group(1))


def dump_schema(dsn: str) -> str:
    """The schema of the database at ``dsn``, without owners and without machine-dependent lines."""
    dumped = subprocess.run(
        [str(PG_DUMP), "--schema-only", "--no-owner", "--dbname", dsn], capture_output=True, text=True
    )
    if dumped.returncode != 0:
        raise RuntimeError(f"{PG_DUMP} failed on {redact(dsn)}: {dumped.stderr.strip()}")
    lines = [line for line in dumped.stdout.splitlines() if not _NOISE.match(line)]
    # Default privileges name the migrating role, which differs between servers.
    text = re.sub(r"FOR ROLE \S+ ", "FOR ROLE CURRENT_USER ", "\n".join(lines))
    return HEADER + re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def generate() -> str:
    """Migrate a new database on a temporary embedded Postgres and return its schema."""
    with tempfile.TemporaryDirectory(prefix="absurd-schema-") as data_dir:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, systemd); harmless here.
            warnings.simplefilter("ignore")
            server = pgserver.get_server(data_dir, cleanup_mode="delete")
        try:
            admin = str(server.get_uri())
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE absurd_schema")
            dsn = make_conninfo(admin, dbname="absurd_schema")
            with psycopg.connect(dsn, autocommit=True) as conn:
                migrate(conn)
            return dump_schema(dsn)
        finally:
            server.cleanup()


def main() -> None:
    """Write the schema to the file given as the only argument, else to docs/schema.sql."""
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_FILE
    target.write_text(generate())
    sys.stdout.write(f"wrote {target}\n")


if __name__ == "__main__":
    main()
