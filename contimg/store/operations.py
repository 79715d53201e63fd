"""The queue as the dashboard reads it: the overview's figures and the task list by cursor.

Every query here is bounded: counts come from the partial view of live states or from a time window,
never a ``COUNT(*)`` over the whole history, and the task list pages by id (a cursor), not OFFSET.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

# Live states only: finished history can hold millions of rows, so it is counted over the last hour.
_LIVE_COUNTS = """
SELECT state, count(*) AS n, min(created_at) FILTER (WHERE state = 'pending') AS oldest_pending
FROM absurd.tasks WHERE state IN ('pending', 'running', 'sleeping', 'waiting')
GROUP BY state
"""
_LAST_HOUR = """
SELECT count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'cancelled') AS cancelled
FROM absurd.tasks WHERE finished_at > now() - interval '1 hour'
"""
_OPEN_DLQ = "SELECT count(*) FROM absurd.dlq WHERE resolved_at IS NULL"
_LIVE_WORKERS = """
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at,
       extract(epoch FROM now() - heartbeat_at) AS heartbeat_age_s
FROM absurd.workers WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '5 minutes'
ORDER BY id
"""
_LAST_PRODUCT = """
SELECT id, path, mid_time, recorded_at, extract(epoch FROM now() - recorded_at) AS age_s
FROM products.images ORDER BY recorded_at DESC, id DESC LIMIT 1
"""
_NOW = "SELECT now()"

# Filters are parameters; a NULL filter matches everything. ``before`` is the cursor (an id).
_TASK_PAGE = """
SELECT id, queue, name, state, attempts, failures, workflow_id, step_name, created_at, started_at,
       finished_at, extract(epoch FROM finished_at - started_at) AS duration_s,
       last_error->>'message' AS error
FROM absurd.tasks
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(before)s::bigint IS NULL OR id < %(before)s)
ORDER BY id DESC LIMIT %(limit)s
"""


class Overview(BaseModel):
    """What the operations overview shows, as of ``now`` (the database's clock)."""

    now: datetime
    live: dict[str, int]
    oldest_pending_at: datetime | None
    oldest_pending_s: float | None
    last_hour: dict[str, int]
    open_dlq: int
    workers: list[dict[str, Any]]
    last_image: dict[str, Any] | None
    stalled: bool
    stall_after_s: float


def overview(conn: psycopg.Connection, stall_after_s: float) -> Overview:
    """The overview's figures; ``stalled`` when no image has been recorded for ``stall_after_s``."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LIVE_COUNTS).fetchall()
        hour = cur.execute(_LAST_HOUR).fetchone() or {}
        workers = cur.execute(_LIVE_WORKERS).fetchall()
        last_image = cur.execute(_LAST_PRODUCT).fetchone()
    now_row = conn.execute(_NOW).fetchone()
    dlq_row = conn.execute(_OPEN_DLQ).fetchone()
    assert now_row is not None and dlq_row is not None
    now = now_row[0]
    live = {s: 0 for s in ("pending", "running", "sleeping", "waiting")}
    oldest = None
    for r in rows:
        live[r["state"]] = int(r["n"])
        oldest = r["oldest_pending"] or oldest
    stalled = last_image is None or float(last_image["age_s"]) > stall_after_s
    return Overview(
        now=now,
        live=live,
        oldest_pending_at=oldest,
        oldest_pending_s=(now - oldest).total_seconds() if oldest else None,
        last_hour={k: int(v or 0) for k, v in hour.items()},
        open_dlq=int(dlq_row[0]),
        workers=workers,
        last_image=last_image,
        stalled=stalled,
        stall_after_s=stall_after_s,
    )


def task_page(
    conn: psycopg.Connection,
    queue: str | None = None,
    state: str | None = None,
    name: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of tasks, newest first, and the cursor of the next page (None on the last)."""
    args = {"queue": queue, "state": state, "name": name, "before": before, "limit": limit + 1}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_TASK_PAGE, args).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (int(rows[-1]["id"]) if more and rows else None)
