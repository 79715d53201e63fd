"""PgQueuer as a side-by-side contender, run at its best: its own schema (``pgq install``, durable
tables), its bulk ``enqueue`` over asyncpg, and worker processes (``pgq_worker``) on asyncpg and uvloop
with an async no-op entrypoint and no concurrency limit, at the batch size given.

PgQueuer is the optional ``bench`` extra; without it ``available()`` is false and ``MISSING`` says what to
install.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.postgres import count, epoch, truth
from tests.support.processes import REPO

ENTRYPOINT = "noop"
MISSING = (
    "PgQueuer is not installed: it is the optional 'bench' extra. "
    "Install it with: .venv/bin/pip install -e '.[bench]'  (or run with --systems engine)"
)
# libpq's environment variables, which both asyncpg and PgQueuer's CLI read.
PG_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
}

# A job's row leaves the queue table when its completion is logged. Both looked up in an index (the poll's
# connection has sequential scans off), stopping at the first entry, as for this engine.
UNFINISHED = "SELECT EXISTS (SELECT 1 FROM pgqueuer ORDER BY id LIMIT 1)"
ANY_DONE = "SELECT EXISTS (SELECT 1 FROM pgqueuer_log WHERE status = 'successful')"
COMPLETED = "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
# A job's start is its pick (the dequeue transaction's NOW(), logged as 'picked'), as for this engine.
SPAWN_TO_START_MS = """
SELECT extract(epoch FROM p.created - q.created) * 1000
FROM pgqueuer_log q JOIN pgqueuer_log p ON p.job_id = q.job_id AND p.status = 'picked'
WHERE q.status = 'queued' AND q.created >= to_timestamp(%s)
"""


def available() -> bool:
    """Whether PgQueuer, its asyncpg driver and uvloop (which PgQueuer installs) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("pgqueuer", "asyncpg", "uvloop"))


def pg_env(dsn: str) -> dict[str, str]:
    """The libpq environment variables that point a client at ``dsn``."""
    return {PG_ENV[k]: str(v) for k, v in conninfo_to_dict(dsn).items() if k in PG_ENV and v is not None}


def version() -> str:
    """The installed PgQueuer version."""
    from importlib.metadata import version as installed

    return installed("pgqueuer")


def install_schema(dsn: str) -> None:
    """``pgq install`` into the database of ``dsn`` (durable tables, its default)."""
    done = subprocess.run(
        [sys.executable, "-m", "pgqueuer", "install"],
        env={**os.environ, **pg_env(dsn)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgq install failed (exit {done.returncode}):\n{done.stderr or done.stdout}")


class PgQueuerSystem:
    """PgQueuer in a database where ``install_schema`` has run, drained at ``batch_size``."""

    def __init__(self, dsn: str, batch_size: int):
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.dsn = dsn
        self.batch_size = batch_size
        self.label = f"PgQueuer {version()}, batch {batch_size}"
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.poll = psycopg.connect(dsn, autocommit=True, options="-c enable_seqscan=off")
        self.loop = asyncio.new_event_loop()
        self.apg: Any = self.loop.run_until_complete(asyncpg.connect(**self._connect_args()))
        self.queries = Queries(AsyncpgDriver(self.apg))

    def _connect_args(self) -> dict[str, str]:
        names = {"dbname": "database"}
        return {names.get(k, k): str(v) for k, v in conninfo_to_dict(self.dsn).items() if k in PG_ENV}

    def reset(self) -> None:
        """Empty the queue, its log and its statistics."""
        self.conn.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")

    def enqueue(self, n: int, batch: int) -> None:
        """``Queries.enqueue`` with lists, in batches."""
        left = n
        while left > 0:
            size = min(batch, left)
            coro = self.queries.enqueue([ENTRYPOINT] * size, [None] * size, [0] * size)
            self.loop.run_until_complete(coro)
            left -= size

    def spawn_one(self) -> None:
        """One ``Queries.enqueue``."""
        self.loop.run_until_complete(self.queries.enqueue(ENTRYPOINT, None))

    def analyze(self) -> None:
        """ANALYZE the queue table."""
        self.conn.execute("ANALYZE pgqueuer")

    def launch(self, processes: int) -> list[subprocess.Popen[bytes]]:
        """``pgq_worker`` processes at this batch size."""
        command = [sys.executable, "-m", "bench.systems.pgq_worker", "--batch-size", str(self.batch_size)]
        env = {**os.environ, **pg_env(self.dsn), "PYTHONPATH": str(REPO)}
        return [subprocess.Popen(command, cwd=REPO, env=env) for _ in range(processes)]

    def unfinished(self) -> bool:
        """Whether a row is left in the queue table."""
        return truth(self.poll, UNFINISHED)

    def any_done(self) -> bool:
        """Whether a job is logged 'successful'."""
        return truth(self.poll, ANY_DONE)

    def completed(self) -> int:
        """Jobs logged 'successful'."""
        return count(self.conn, COMPLETED)

    def clock(self) -> float:
        """The database's clock."""
        return epoch(self.conn)

    def latencies_ms(self, since: float) -> list[float]:
        """The 'picked' log row's time minus the 'queued' one's."""
        return [float(r[0]) for r in self.conn.execute(SPAWN_TO_START_MS, (since,)).fetchall()]

    def close(self) -> None:
        """Close both connections and the event loop."""
        self.loop.run_until_complete(self.apg.close())
        self.loop.close()
        self.conn.close()
        self.poll.close()
