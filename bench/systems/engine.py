"""This project's queue as a side-by-side contender: ``spawn_many``/``spawn`` through ``Client``, drained by
``python -m absurd worker`` processes running the built-in ``noop`` task."""

from __future__ import annotations

import subprocess

import psycopg

from absurd.client import Client
from bench.postgres import count, epoch, truth
from bench.processes import start_workers
from bench.queue.workload import reset_queue

# Looked up in the claim and lease indexes, which hold only unfinished tasks (the poll's connection has
# sequential scans off: with statistics taken when every task was pending, the planner would scan the
# table). An EXISTS stops at the first live entry: the count this replaced visited every queued task's row,
# 10 ms a poll at 30,000 queued, a fifth of the server's work in a drain.
UNFINISHED = """
SELECT EXISTS (SELECT 1 FROM absurd.tasks WHERE state IN ('pending', 'sleeping') AND gate_key IS NULL)
    OR EXISTS (SELECT 1 FROM absurd.tasks WHERE state IN ('pending', 'sleeping') AND gate_key IS NOT NULL)
    OR EXISTS (SELECT 1 FROM absurd.tasks WHERE state = 'running')
"""
ANY_DONE = "SELECT EXISTS (SELECT 1 FROM absurd.tasks WHERE finished_at IS NOT NULL AND state = 'completed')"
COMPLETED = "SELECT count(*) FROM absurd.tasks WHERE state = 'completed'"
# A run's start is its claim (the claim transaction's now()); the first attempt's run is the one timed.
SPAWN_TO_START_MS = """
SELECT extract(epoch FROM r.started_at - t.created_at) * 1000
FROM absurd.tasks t JOIN absurd.attempts r ON r.task_id = t.id AND r.attempt = 1
WHERE t.created_at >= to_timestamp(%s)
"""


class EngineSystem:
    """This engine in a migrated database, with ``concurrency`` task slots per worker process; with
    ``forked``, W worker processes are forked by one ``absurd worker --workers W`` rather than started
    as W commands."""

    def __init__(self, dsn: str, concurrency: int, forked: bool = False):
        self.dsn = dsn
        self.concurrency = concurrency
        self.forked = forked
        self.label = f"this engine, {concurrency} slots" + (", --workers W" if forked else "")
        self.client = Client(dsn)
        self.poll = psycopg.connect(dsn, autocommit=True, options="-c enable_seqscan=off")

    def reset(self) -> None:
        """Empty the queue tables."""
        reset_queue(self.client.conn)

    def enqueue(self, n: int, batch: int) -> None:
        """``spawn_many`` in batches."""
        left = n
        while left > 0:
            size = min(batch, left)
            self.client.spawn_many("noop", [None] * size)
            left -= size

    def spawn_one(self) -> None:
        """One ``spawn``."""
        self.client.spawn("noop")

    def analyze(self) -> None:
        """ANALYZE the tasks table."""
        self.client.conn.execute("ANALYZE absurd.tasks")

    def launch(self, processes: int) -> list[subprocess.Popen[bytes]]:
        """``absurd worker`` processes serving the built-in tasks."""
        return start_workers(self.dsn, processes, self.concurrency, forked=self.forked)

    def unfinished(self) -> bool:
        """Whether a task is pending, running or sleeping."""
        return truth(self.poll, UNFINISHED)

    def any_done(self) -> bool:
        """Whether a task has completed."""
        return truth(self.poll, ANY_DONE)

    def completed(self) -> int:
        """Tasks completed."""
        return count(self.client.conn, COMPLETED)

    def clock(self) -> float:
        """The database's clock."""
        return epoch(self.client.conn)

    def latencies_ms(self, since: float) -> list[float]:
        """A run's ``started_at`` minus its task's ``created_at``."""
        rows = self.client.conn.execute(SPAWN_TO_START_MS, (since,)).fetchall()
        return [float(r[0]) for r in rows]

    def close(self) -> None:
        """Close the client's and the poll's connections."""
        self.client.close()
        self.poll.close()
