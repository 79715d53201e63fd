"""Spawn-to-start latency: one task at a time to an idle worker, a run's ``started_at`` minus its task's
``created_at`` (database clock)."""

from __future__ import annotations

import statistics
import time

from absurd.client import Client
from bench.processes import check_alive, workers

SPAWN_TO_START_MS = """
SELECT extract(epoch FROM r.started_at - t.created_at) * 1000
FROM absurd.tasks t JOIN absurd.attempts r ON r.task_id = t.id AND r.attempt = 1
WHERE t.id = ANY(%s)
"""


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 (nearest rank) of ``values``."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def measure_latency(client: Client, dsn: str, samples: int, concurrency: int) -> tuple[float, float]:
    """p50 and p99 of spawn -> start, one task at a time to an idle worker woken by NOTIFY."""
    conn = client.conn
    with workers(dsn, 1, concurrency) as procs:
        # Wait for the worker to register and its listener to settle, then warm it with a few tasks.
        deadline = time.monotonic() + 60
        while not conn.execute("SELECT 1 FROM absurd.workers").fetchone():
            check_alive(procs)
            if time.monotonic() > deadline:
                raise TimeoutError("the latency worker did not register within 60 s")
            time.sleep(0.1)
        time.sleep(1.0)
        ids = []
        for i in range(samples + 10):
            task_id = client.spawn("noop").task_id
            while True:
                row = conn.execute("SELECT state FROM absurd.tasks WHERE id = %s", (task_id,)).fetchone()
                if row and row[0] == "completed":
                    break
                check_alive(procs)
                time.sleep(0.002)
            if i >= 10:
                ids.append(task_id)
            time.sleep(0.02)  # let the worker go back to waiting on its notification
    rows = conn.execute(SPAWN_TO_START_MS, (ids,)).fetchall()
    return percentiles([float(r[0]) for r in rows])
