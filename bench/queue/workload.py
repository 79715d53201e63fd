"""The load the queue benchmark puts on the database: no-op spawns, and raw commits for comparison."""

from __future__ import annotations

import time

import psycopg

from absurd.client import Client
from bench.queue.plan import Sizes


def reset_queue(conn: psycopg.Connection) -> None:
    """Empty the queue tables so each measurement starts from the same state."""
    conn.execute(
        "TRUNCATE absurd.tasks, absurd.runs, absurd.checkpoints, absurd.workers, absurd.workflows, "
        "absurd.task_deps"
    )


def spawn_noops(client: Client, n: int, batch: int) -> float:
    """Spawn ``n`` no-op tasks in batches; return the seconds it took."""
    start = time.perf_counter()
    left = n
    while left > 0:
        size = min(batch, left)
        client.spawn_many("noop", [None] * size)
        left -= size
    return time.perf_counter() - start


def measure_commits(conn: psycopg.Connection, seconds: float) -> float:
    """Single-row UPDATE commits per second, autocommit, one connection."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_counter (id int PRIMARY KEY, n bigint NOT NULL)")
    conn.execute("INSERT INTO bench_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0")
    count = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        conn.execute("UPDATE bench_counter SET n = n + 1 WHERE id = 1")
        count += 1
    return count / (time.perf_counter() - start)


def measure_enqueue(client: Client, sizes: Sizes) -> float:
    """Tasks per second through spawn_many, one round trip per batch."""
    return sizes.enqueue_tasks / spawn_noops(client, sizes.enqueue_tasks, sizes.enqueue_batch)
