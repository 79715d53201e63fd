"""One PgQueuer worker process: ``python -m bench.systems.pgq_worker --batch-size N``, pointed at its
database by libpq's environment variables (PGHOST, PGDATABASE, ...).

It serves one async no-op entrypoint on a ``QueueManager`` over asyncpg, in a uvloop event loop (as
PgQueuer's own benchmark does), with no concurrency limit, until SIGTERM.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

import asyncpg
import pgqueuer
import uvloop
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.qm import QueueManager
from pgqueuer.queries import Queries

ENTRYPOINT = "noop"


@asynccontextmanager
async def manager() -> AsyncIterator[QueueManager]:
    """A queue manager on one asyncpg connection, serving the no-op entrypoint."""
    conn = await asyncpg.connect()
    qm = QueueManager(Queries(AsyncpgDriver(conn)))

    @qm.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        return None

    try:
        yield qm
    finally:
        await conn.close()


def main() -> None:
    """Run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    run = partial(pgqueuer.run, manager, batch_size=args.batch_size, dequeue_timeout=timedelta(seconds=30))
    uvloop.run(run())


if __name__ == "__main__":
    main()
